/* tedge-mapper entry point. The built-in Cumulocity bridge arrives with the connect issue;
 * until then this binary only answers --help and --version. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("tedge-mapper %s\n", TEDGE_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("Usage: tedge-mapper <COMMAND>\n\n"
               "The built-in cloud bridge. Not implemented in this build yet.\n");
        return 0;
    }
    fprintf(stderr, "tedge-mapper: the built-in bridge is not implemented in this build yet.\n");
    return 1;
}
