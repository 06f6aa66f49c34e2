# WineFixture.cmake - run with cmake -P by the wine.setup / wine.cleanup tests.
#   -DACTION=setup   create the prefix if needed and start a persistent wineserver
#   -DACTION=cleanup stop that wineserver
# Every output goes to files, never to ctest's pipes: Wine's helper processes
# (services.exe, winedevice.exe) outlive the command that started them, and
# would otherwise hold a test's output pipe open after the test has ended.
set(ENV{WINEPREFIX} "${PREFIX}")
set(ENV{WINEDEBUG} "-all")
set(ENV{WINEDLLOVERRIDES} "mscoree,mshtml=")
if(ACTION STREQUAL "setup")
  file(MAKE_DIRECTORY "${PREFIX}")
  # -p: stay alive for 300 s after the last Wine process exits.
  execute_process(COMMAND "${WINESERVER}" -p300 INPUT_FILE /dev/null
                  OUTPUT_FILE "${PREFIX}/wineserver.log" ERROR_FILE "${PREFIX}/wineserver.log")
  execute_process(COMMAND "${WINE}" wineboot.exe -u INPUT_FILE /dev/null
                  OUTPUT_FILE "${PREFIX}/wineboot.log" ERROR_FILE "${PREFIX}/wineboot.log"
                  RESULT_VARIABLE rc TIMEOUT 280)
  if(NOT rc EQUAL 0)
    file(READ "${PREFIX}/wineboot.log" log)
    message(FATAL_ERROR "wineboot failed (${rc}):\n${log}")
  endif()
  message(STATUS "Wine prefix ready: ${PREFIX}")
elseif(ACTION STREQUAL "cleanup")
  execute_process(COMMAND "${WINESERVER}" -k INPUT_FILE /dev/null OUTPUT_QUIET ERROR_QUIET)
else()
  message(FATAL_ERROR "ACTION must be setup or cleanup")
endif()
