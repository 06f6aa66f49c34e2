# EvqBook.cmake - book tooling (filled in by the book-tooling work).
