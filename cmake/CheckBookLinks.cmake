# CheckBookLinks.cmake - every relative link in the book (and the README)
# points at a file that exists, and every page of the book is in SUMMARY.md.
#
#   cmake -DROOT=<repo> -DPAGES="README.md,book/a.md,..." [-DSUMMARY=book/SUMMARY.md]
#         -P cmake/CheckBookLinks.cmake
#
# Links to the web (scheme:...) and to an anchor in the same page (#...) are
# not checked; "page.md#heading" is checked for the file only. Links inside
# fenced code blocks are text, not links. Prints one line per broken link
# (page:line: target) and exits non-zero when there is any.

cmake_minimum_required(VERSION 3.25)
string(REPLACE "," ";" pages "${PAGES}")
set(broken 0)
set(linked "")

foreach(page IN LISTS pages)
  if(NOT EXISTS "${ROOT}/${page}")
    message("${page}: page not found")
    math(EXPR broken "${broken} + 1")
    continue()
  endif()
  get_filename_component(page_dir "${ROOT}/${page}" DIRECTORY)
  # CMake lists split on ';' and treat '[' ']' as nesting: both occur in
  # Markdown, so they are replaced by markers before the text becomes a list.
  file(READ "${ROOT}/${page}" content)
  string(REPLACE ";" "<semicolon>" content "${content}")
  string(REPLACE "](" "<link>(" content "${content}")
  string(REPLACE "[" "<open>" content "${content}")
  string(REPLACE "]" "<close>" content "${content}")
  string(REPLACE "\n" ";" lines "${content}")
  set(number 0)
  set(in_fence FALSE)
  foreach(line IN LISTS lines)
    math(EXPR number "${number} + 1")
    if(line MATCHES "^(```|~~~)")
      if(in_fence)
        set(in_fence FALSE)
      else()
        set(in_fence TRUE)
      endif()
      continue()
    endif()
    if(in_fence)
      continue()
    endif()
    # Inline code spans may show link syntax as text: drop them first.
    string(REGEX REPLACE "`[^`]*`" "" text "${line}")
    string(REGEX MATCHALL "<link>\\([^) ]+\\)" links "${text}")
    foreach(link IN LISTS links)
      string(REGEX REPLACE "^<link>\\(([^) ]+)\\)$" "\\1" target "${link}")
      if(target MATCHES "^[a-zA-Z][a-zA-Z0-9+.-]*:" OR target MATCHES "^#")
        continue()
      endif()
      string(REGEX REPLACE "#.*$" "" file_part "${target}")
      get_filename_component(resolved "${page_dir}/${file_part}" ABSOLUTE)
      if(NOT EXISTS "${resolved}")
        message("${page}:${number}: broken link: ${target}")
        math(EXPR broken "${broken} + 1")
      elseif(DEFINED SUMMARY AND page STREQUAL SUMMARY)
        list(APPEND linked "${resolved}")
      endif()
    endforeach()
  endforeach()
endforeach()

# Every page in the summary's folder (but the summary) must be listed in it:
# a page a reader cannot reach from the table of contents is lost.
if(DEFINED SUMMARY)
  get_filename_component(book_dir "${ROOT}/${SUMMARY}" DIRECTORY)
  get_filename_component(summary_name "${SUMMARY}" NAME)
  file(GLOB book_pages "${book_dir}/*.md")
  foreach(book_page IN LISTS book_pages)
    get_filename_component(name "${book_page}" NAME)
    if(name STREQUAL summary_name)
      continue()
    endif()
    get_filename_component(resolved "${book_page}" ABSOLUTE)
    if(NOT resolved IN_LIST linked)
      message("${SUMMARY}: page not in the summary: ${name}")
      math(EXPR broken "${broken} + 1")
    endif()
  endforeach()
endif()

list(LENGTH pages page_count)
if(broken GREATER 0)
  message(FATAL_ERROR "links: ${broken} problem(s) in ${page_count} page(s)")
endif()
message("links: ${page_count} page(s), every link resolves")
