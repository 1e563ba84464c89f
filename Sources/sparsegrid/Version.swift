/// This build's version, printed by `sparsegrid --version`.
let sparsegridVersion = "0.5.0"
