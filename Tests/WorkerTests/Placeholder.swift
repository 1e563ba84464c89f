// Replaced by the WorkerSession tests.
