# EvqBook.cmake - the book's tooling, included last by the top-level
# CMakeLists.txt.
#
# Every code block in book/*.md that follows a marker line
#     <!-- include: chapters/02-oneshot/src/poll_epoll.c:wait -->
# must equal that region of the source (see common/tools/excerpts.h).
#
#   ctest -R '^book[.]excerpts$'              check every page (test book.excerpts, label book)
#   cmake --build <dir> --target book-excerpts   rewrite the blocks from the source
#   cmake --build <dir> --target book-html       the book as HTML in <dir>/book-html/ (pandoc)
#
# The checker is a host tool: it is built, and its tests run, only when not
# cross-compiling. Its own tests are book.excerpts.<case> (tests/book).

include_guard(GLOBAL)

# Paths relative to the repository root, so that messages read
# "book/02-oneshot.md:40: ..." and the same paths work in --update.
file(GLOB evq_book_pages CONFIGURE_DEPENDS RELATIVE "${PROJECT_SOURCE_DIR}"
     "${PROJECT_SOURCE_DIR}/book/*.md")
list(SORT evq_book_pages)

# ---- links ----------------------------------------------------------------------
# book.links: every relative link in the book and the README resolves, and
# every page is in SUMMARY.md. A CMake script, so it runs everywhere (under
# the Wine preset too).
string(JOIN "," evq_link_pages README.md ${evq_book_pages})
add_test(NAME book.links
         COMMAND ${CMAKE_COMMAND} "-DROOT=${PROJECT_SOURCE_DIR}" "-DPAGES=${evq_link_pages}"
                 -DSUMMARY=book/SUMMARY.md -P "${PROJECT_SOURCE_DIR}/cmake/CheckBookLinks.cmake")
evq_set_test_properties(book.links LABELS book)

# ---- the excerpt checker --------------------------------------------------------
if(NOT CMAKE_CROSSCOMPILING)
  add_subdirectory("${PROJECT_SOURCE_DIR}/common/tools" "${CMAKE_BINARY_DIR}/common/tools")

  # With no page yet it checks nothing and says "0 excerpts checked in 0 pages".
  add_test(NAME book.excerpts
           COMMAND evq_excerpts --check --root . ${evq_book_pages}
           WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}")
  evq_set_test_properties(book.excerpts LABELS book)

  add_custom_target(book-excerpts
                    COMMAND evq_excerpts --update --root . ${evq_book_pages}
                    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                    COMMENT "Copying the source regions into the book's code blocks"
                    VERBATIM)

  add_subdirectory("${PROJECT_SOURCE_DIR}/tests/book" "${CMAKE_BINARY_DIR}/tests/book")
else()
  add_custom_target(book-excerpts
                    COMMAND ${CMAKE_COMMAND} -E echo
                            "book-excerpts: the excerpt checker is a host tool and is not built when cross-compiling; use a native build"
                    VERBATIM)
endif()

# ---- the book as HTML -------------------------------------------------------------
find_program(EVQ_PANDOC pandoc DOC "pandoc, to render the book as HTML (optional)")
set(evq_book_html_dir "${CMAKE_BINARY_DIR}/book-html")
if(EVQ_PANDOC)
  set(evq_book_filter "${PROJECT_SOURCE_DIR}/common/tools/book_html.lua")
  set(evq_book_outputs "")
  foreach(page IN LISTS evq_book_pages)
    get_filename_component(stem "${page}" NAME_WLE)
    set(extra "")
    if(stem STREQUAL "SUMMARY")
      set(html "${evq_book_html_dir}/index.html")
      set(extra --metadata evq-index=true --metadata pagetitle=Contents)
    else()
      set(html "${evq_book_html_dir}/${stem}.html")
    endif()
    add_custom_command(
      OUTPUT "${html}"
      COMMAND ${CMAKE_COMMAND} -E make_directory "${evq_book_html_dir}"
      COMMAND "${EVQ_PANDOC}" --from gfm --to html5 --standalone
              --lua-filter "${evq_book_filter}"
              --metadata "evq-source-root=${PROJECT_SOURCE_DIR}" ${extra}
              --output "${html}" "${PROJECT_SOURCE_DIR}/${page}"
      DEPENDS "${PROJECT_SOURCE_DIR}/${page}" "${evq_book_filter}"
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}/book"
      COMMENT "pandoc ${page}"
      VERBATIM)
    list(APPEND evq_book_outputs "${html}")
  endforeach()
  # Pictures the pages refer to, next to the pages.
  file(GLOB_RECURSE evq_book_images CONFIGURE_DEPENDS RELATIVE "${PROJECT_SOURCE_DIR}/book"
       "${PROJECT_SOURCE_DIR}/book/*.png" "${PROJECT_SOURCE_DIR}/book/*.svg"
       "${PROJECT_SOURCE_DIR}/book/*.jpg" "${PROJECT_SOURCE_DIR}/book/*.gif")
  foreach(image IN LISTS evq_book_images)
    add_custom_command(
      OUTPUT "${evq_book_html_dir}/${image}"
      COMMAND ${CMAKE_COMMAND} -E copy_if_different "${PROJECT_SOURCE_DIR}/book/${image}"
              "${evq_book_html_dir}/${image}"
      DEPENDS "${PROJECT_SOURCE_DIR}/book/${image}"
      VERBATIM)
    list(APPEND evq_book_outputs "${evq_book_html_dir}/${image}")
  endforeach()
  add_custom_target(book-html DEPENDS ${evq_book_outputs}
                    COMMENT "The book as HTML: ${evq_book_html_dir}/index.html")
  message(STATUS "evq: book-html renders the book with ${EVQ_PANDOC}")
else()
  message(STATUS "evq: pandoc not found, book-html will only say so")
  add_custom_target(book-html
                    COMMAND ${CMAKE_COMMAND} -E echo
                            "book-html: pandoc is not installed, skipping the HTML book (install pandoc and re-run cmake)"
                    VERBATIM)
endif()
