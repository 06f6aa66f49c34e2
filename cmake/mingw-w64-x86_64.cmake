# Toolchain: build Windows x86-64 programs with mingw-w64 on Linux, and run
# them (tests included) under Wine through CMAKE_CROSSCOMPILING_EMULATOR.
#   Debian: apt-get install gcc-mingw-w64-x86-64 wine64 wine
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(EVQ_MINGW_TRIPLE x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${EVQ_MINGW_TRIPLE}-gcc ${EVQ_MINGW_TRIPLE}-gcc-win32 ${EVQ_MINGW_TRIPLE}-gcc-posix REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${EVQ_MINGW_TRIPLE}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${EVQ_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Link the C runtime support libraries statically, so that the .exe runs under
# Wine without libgcc or libwinpthread DLLs on its path.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# Debian installs the 64-bit loader as /usr/lib/wine/wine64; /usr/bin/wine is
# a wrapper that prefers a 32-bit Wine when one is installed.
# Where this system lets a process turn address-space randomisation off
# (setarch -R; some container sandboxes forbid the personality() call), the
# programs run through cmake/wine-run.sh, which finds that same Wine and
# starts it that way (see the script for why). Asked once here, not at every
# launch.
find_program(EVQ_WINE NAMES wine64 wine PATHS /usr/lib/wine /usr/bin NO_CACHE)
if(EVQ_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${EVQ_WINE}")
  execute_process(COMMAND setarch "${CMAKE_HOST_SYSTEM_PROCESSOR}" -R true
                  RESULT_VARIABLE evq_no_aslr OUTPUT_QUIET ERROR_QUIET)
  if(evq_no_aslr EQUAL 0)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/wine-run.sh")
  endif()
endif()
