// Store module: see DESIGN.md §1. (Being built.)
