/* excerpts_main.c - the excerpt checker's command line (see excerpts.h):
 *
 *     excerpts [--check | --update] [--root DIR] [PAGE.md ...]
 *
 * Exit status 0 when every excerpt matches (or was rewritten), 1 when one
 * differs or is broken, 2 on a bad command line.
 */
#include "excerpts.h"

int main(int argc, char **argv)
{
    return evq_excerpts_main(argc, argv, stdout, stderr);
}
