// Replaced by the suite of this target.
