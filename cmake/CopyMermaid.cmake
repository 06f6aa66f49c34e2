# CopyMermaid.cmake - put mermaid's browser bundle beside the HTML book (run
# by the book-html target on every build):
#   cmake -DBUNDLE=<node_modules>/mermaid/dist/mermaid.min.js -DDESTINATION=<dir> -P CopyMermaid.cmake
# Without the bundle the pages still build and show each diagram as its
# source text; this says how to get the pictures.
if(EXISTS "${BUNDLE}")
  file(MAKE_DIRECTORY "${DESTINATION}")
  file(COPY_FILE "${BUNDLE}" "${DESTINATION}/mermaid.min.js" ONLY_IF_DIFFERENT)
else()
  message("book-html: mermaid is not installed (${BUNDLE}): the diagrams will show as text. "
          "Run `cmake --build <build dir> --target book-tools` once (npm ci), then book-html again.")
endif()
