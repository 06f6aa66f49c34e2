#!/bin/sh
# wine-run.sh - how the windows-wine build runs a .exe (its
# CMAKE_CROSSCOMPILING_EMULATOR, chosen by cmake/mingw-w64-x86_64.cmake when
# the system lets a process turn randomisation off): Wine, with address-space
# randomisation off for that one process.
#
# Why: Wine maps its "shared user data" page at a fixed address. With
# randomisation on, something else is now and then already there, and Wine
# gives up before the program starts ("err:virtual:virtual_alloc_first_teb
# wine: failed to map the shared user data: c0000018", exit status 1, no
# output). Measured here: 3 launches in 9000 failed that way with
# randomisation, 0 in 9000 without - rare for one launch, but a test run
# starts hundreds. `setarch -R` turns it off for this process only.
for candidate in /usr/lib/wine/wine64 "$(command -v wine64 2>/dev/null)" "$(command -v wine 2>/dev/null)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        wine=$candidate
        break
    fi
done
if [ -z "${wine:-}" ]; then
    echo "wine-run.sh: no wine64 or wine found" >&2
    exit 127
fi
exec setarch "$(uname -m)" -R "$wine" "$@"
