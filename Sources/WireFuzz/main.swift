// Replaced by the fuzz harness (see the WireFuzz target in Package.swift).
print("WireFuzz: no harness yet")
