"""The study's analyses, one module each, every one returning tidy DataFrames."""
