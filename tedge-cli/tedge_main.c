/* tedge entry point: global options and the subcommand dispatcher. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("tedge %s\n", TEDGE_VERSION);
        return 0;
    }
    printf("Usage: tedge [OPTIONS] <COMMAND>\n");
    return argc > 1 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0;
}
