# BookBrowserTest.cmake - the test book.browser (see EvqBook.cmake):
#   cmake -DNODE= -DCHROMIUM= -DPANDOC= -DMODULES= -DBUILD_DIR= -DPAGES=a.html|b.html
#         -DSCRIPT=render_pages.mjs -DSCREENSHOTS=<dir> -P BookBrowserTest.cmake
# Says "SKIPPED: why" (the test's SKIP_REGULAR_EXPRESSION) when a tool is
# missing; otherwise builds book-html (pandoc, and the copy of mermaid's
# bundle: nothing is downloaded) and renders every page in Chromium.
foreach(tool NODE CHROMIUM PANDOC)
  if(NOT ${tool} OR ${tool} MATCHES "-NOTFOUND$")
    string(TOLOWER "${tool}" name)
    message("SKIPPED: ${name} is not installed (apt-get install nodejs npm chromium pandoc), "
            "then re-run cmake")
    return()
  endif()
endforeach()
if(NOT EXISTS "${MODULES}/mermaid/dist/mermaid.min.js")
  message("SKIPPED: mermaid is not installed in ${MODULES}: run "
          "`cmake --build ${BUILD_DIR} --target book-tools` (npm ci) once")
  return()
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target book-html
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "book-html failed:\n${out}")
endif()

string(REPLACE "|" ";" pages "${PAGES}")
execute_process(COMMAND "${NODE}" "${SCRIPT}" --chromium "${CHROMIUM}" --screenshots "${SCREENSHOTS}"
                        ${pages}
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "book.browser: a page failed in Chromium (exit status ${status})")
endif()
