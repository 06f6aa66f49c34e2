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
#   cmake --build <dir> --target book-tools      npm ci: mermaid (+ jsdom) into <dir>/book-tools,
#                                                for book.diagrams, book-html and book.browser
#   ctest -R '^book[.]diagrams$'               every ```mermaid block parses (mermaid, in node)
#   ctest -R '^book[.]browser$'                every HTML page drawn in headless Chromium
#
# The node tests are skipped, saying why, when node, the npm packages,
# pandoc or chromium are missing; they never reach the network (only the
# book-tools target does, once).
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

  # Listings are numbered and named by file ("**Listing 2.3** — `path`" above
  # each include marker). A page listed here would be checked for everything
  # but its captions (every page has them now); book-excerpts writes them.
  set(evq_book_unnumbered)
  # And a listing is read beside the prose: at most 40 lines (STYLE.md).
  set(evq_book_listing_options --listings --max-lines 40)
  foreach(page IN LISTS evq_book_unnumbered)
    list(APPEND evq_book_listing_options --unnumbered "${page}")
  endforeach()

  # With no page yet it checks nothing and says "0 excerpts checked in 0 pages".
  add_test(NAME book.excerpts
           COMMAND evq_excerpts --check --root . ${evq_book_listing_options} ${evq_book_pages}
           WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}")
  evq_set_test_properties(book.excerpts LABELS book)

  add_custom_target(book-excerpts
                    COMMAND evq_excerpts --update --root . ${evq_book_listing_options}
                            ${evq_book_pages}
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

# ---- node tools: mermaid, installed into the build tree ----------------------------------
# The npm packages the diagram check and the HTML book need are pinned in
# common/tools/node/package-lock.json and installed by an explicit target,
# never as a side effect of a build or a test (which must work offline).
find_program(EVQ_NODE NAMES node nodejs DOC "node, for the book's diagram and browser tests (optional)")
find_program(EVQ_NPM npm DOC "npm, to install mermaid for the book (optional)")
set(evq_node_tools "${PROJECT_SOURCE_DIR}/common/tools/node")
set(EVQ_BOOK_TOOLS_DIR "${CMAKE_BINARY_DIR}/book-tools")
set(evq_node_modules "${EVQ_BOOK_TOOLS_DIR}/node_modules")
if(EVQ_NPM)
  add_custom_command(
    OUTPUT "${EVQ_BOOK_TOOLS_DIR}/installed.stamp"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${EVQ_BOOK_TOOLS_DIR}"
    COMMAND ${CMAKE_COMMAND} -E copy "${evq_node_tools}/package.json"
            "${evq_node_tools}/package-lock.json" "${EVQ_BOOK_TOOLS_DIR}"
    COMMAND ${CMAKE_COMMAND} -E chdir "${EVQ_BOOK_TOOLS_DIR}"
            "${EVQ_NPM}" ci --no-audit --no-fund --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch "${EVQ_BOOK_TOOLS_DIR}/installed.stamp"
    DEPENDS "${evq_node_tools}/package.json" "${evq_node_tools}/package-lock.json"
    COMMENT "npm ci: mermaid and jsdom into ${EVQ_BOOK_TOOLS_DIR}"
    VERBATIM)
  add_custom_target(book-tools DEPENDS "${EVQ_BOOK_TOOLS_DIR}/installed.stamp")
else()
  add_custom_target(book-tools
                    COMMAND ${CMAKE_COMMAND} -E echo
                            "book-tools: npm is not installed (apt-get install nodejs npm), and re-run cmake"
                    VERBATIM)
endif()

# book.diagrams: every ```mermaid block of every page parses with mermaid.
# Host tests, like book.excerpts: not registered in a cross build.
if(CMAKE_CROSSCOMPILING)
  # nothing: the native build of the same tree runs them
elseif(EVQ_NODE)
  add_test(NAME book.diagrams
           COMMAND "${EVQ_NODE}" "${evq_node_tools}/check_diagrams.mjs"
                   --modules "${evq_node_modules}" ${evq_book_pages}
           WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}")
  # The checker's own tests: a page with the ';' trap must fail, naming its
  # line - where mermaid cannot parse the diagram (broken.md), and in a state
  # diagram's label, which parses and draws the rest of the label as loose
  # boxes (semicolon_in_label.md).
  foreach(fixture
          "broken_diagram_fails|broken.md|broken.md:10: mermaid cannot parse this diagram [(]it starts at line 9[)].*broken.md:10: note: .* ends a mermaid statement.*diagrams: 1 of 2 diagrams in 1 page do not parse"
          "semicolon_in_a_label_fails|semicolon_in_label.md|semicolon_in_label.md:6: .* ends a mermaid statement, even inside a label where the diagram still parses.*diagrams: 1 of 1 diagrams in 1 page do not parse")
    string(REPLACE "|" ";" fields "${fixture}")
    list(GET fields 0 name)
    list(GET fields 1 page)
    list(GET fields 2 expected)
    add_test(NAME book.diagrams.${name}
             COMMAND ${CMAKE_COMMAND} "-DPROGRAM=${EVQ_NODE}"
                     "-DARGS=${evq_node_tools}/check_diagrams.mjs|--modules|${evq_node_modules}|tests/book/fixtures/diagrams/${page}"
                     -DEXPECT_EXIT=1 "-DSKIP_IF=SKIPPED: " "-DEXPECT_OUTPUT=${expected}"
                     -P "${PROJECT_SOURCE_DIR}/tests/book/expect_run.cmake"
             WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}")
  endforeach()
else()
  foreach(test book.diagrams book.diagrams.broken_diagram_fails book.diagrams.semicolon_in_a_label_fails)
    add_test(NAME ${test} COMMAND ${CMAKE_COMMAND} -E echo
                                  "SKIPPED: node is not installed (apt-get install nodejs npm)")
  endforeach()
endif()
if(NOT CMAKE_CROSSCOMPILING)
  foreach(test book.diagrams book.diagrams.broken_diagram_fails book.diagrams.semicolon_in_a_label_fails)
    evq_set_test_properties(${test} LABELS book diagrams)
    set_tests_properties(${test} PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED: ")
  endforeach()
endif()

# ---- the book as HTML -------------------------------------------------------------
find_program(EVQ_PANDOC pandoc DOC "pandoc, to render the book as HTML (optional)")
set(evq_book_html_dir "${CMAKE_BINARY_DIR}/book-html")
set(evq_book_html_pages "")
if(EVQ_PANDOC)
  set(evq_book_filter "${PROJECT_SOURCE_DIR}/common/tools/book_html.lua")
  set(evq_book_head "${PROJECT_SOURCE_DIR}/common/tools/book_html_head.html")
  set(evq_book_outputs "")
  foreach(page IN LISTS evq_book_pages)
    get_filename_component(stem "${page}" NAME_WLE)
    get_filename_component(name "${page}" NAME)
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
      COMMAND "${EVQ_PANDOC}" --from gfm --to html5 --standalone --highlight-style=pygments
              --lua-filter "${evq_book_filter}" --include-in-header "${evq_book_head}"
              --metadata "evq-source-root=${PROJECT_SOURCE_DIR}"
              --metadata "evq-summary=${PROJECT_SOURCE_DIR}/book/SUMMARY.md"
              --metadata "evq-page=${name}" ${extra}
              --output "${html}" "${PROJECT_SOURCE_DIR}/${page}"
      DEPENDS "${PROJECT_SOURCE_DIR}/${page}" "${evq_book_filter}" "${evq_book_head}"
              "${PROJECT_SOURCE_DIR}/book/SUMMARY.md"
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}/book"
      COMMENT "pandoc ${page}"
      VERBATIM)
    list(APPEND evq_book_outputs "${html}")
    list(APPEND evq_book_html_pages "${html}")
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
  # mermaid's browser bundle beside the pages, so that every diagram is drawn
  # with no network. Copied on every build of book-html (a cheap copy-if-
  # different) rather than tied to book-tools' output: a book-html build must
  # never run npm, and the bundle may be installed after cmake ran.
  add_custom_target(book-html-mermaid
                    COMMAND ${CMAKE_COMMAND} "-DBUNDLE=${evq_node_modules}/mermaid/dist/mermaid.min.js"
                            "-DDESTINATION=${evq_book_html_dir}"
                            -P "${PROJECT_SOURCE_DIR}/cmake/CopyMermaid.cmake"
                    VERBATIM)
  add_custom_target(book-html DEPENDS ${evq_book_outputs}
                    COMMENT "The book as HTML: ${evq_book_html_dir}/index.html")
  add_dependencies(book-html book-html-mermaid)
  message(STATUS "evq: book-html renders the book with ${EVQ_PANDOC}")
else()
  message(STATUS "evq: pandoc not found, book-html will only say so")
  add_custom_target(book-html
                    COMMAND ${CMAKE_COMMAND} -E echo
                            "book-html: pandoc is not installed, skipping the HTML book (install pandoc and re-run cmake)"
                    VERBATIM)
endif()

# book.browser: build book-html, open every page in headless Chromium, check
# that every diagram became an SVG and that nothing logged an error; one
# screenshot per page in <dir>/book-screenshots.
find_program(EVQ_CHROMIUM NAMES chromium chromium-browser google-chrome
             DOC "Chromium, for the book's browser test (optional)")
if(NOT CMAKE_CROSSCOMPILING)
  list(JOIN evq_book_html_pages "|" evq_browser_pages)
  add_test(NAME book.browser
           COMMAND ${CMAKE_COMMAND} "-DNODE=${EVQ_NODE}" "-DCHROMIUM=${EVQ_CHROMIUM}"
                   "-DPANDOC=${EVQ_PANDOC}" "-DMODULES=${evq_node_modules}"
                   "-DBUILD_DIR=${CMAKE_BINARY_DIR}" "-DPAGES=${evq_browser_pages}"
                   "-DSCRIPT=${evq_node_tools}/render_pages.mjs"
                   "-DSCREENSHOTS=${CMAKE_BINARY_DIR}/book-screenshots"
                   -P "${PROJECT_SOURCE_DIR}/cmake/BookBrowserTest.cmake")
  evq_set_test_properties(book.browser LABELS book browser TIMEOUT 300)
  set_tests_properties(book.browser PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED: " RUN_SERIAL TRUE)
endif()
