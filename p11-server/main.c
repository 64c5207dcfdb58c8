/* tedge-p11-server entry point. The daemon itself arrives with the daemon issue; until then
 * this binary only answers --help and --version, and says so instead of pretending to serve. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("tedge-p11-server %s\n", TEDGE_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("Usage: tedge-p11-server [OPTIONS]\n\n"
               "The PKCS#11 signing daemon. Not implemented in this build yet.\n");
        return 0;
    }
    fprintf(stderr, "tedge-p11-server: the signing daemon is not implemented in this build yet.\n");
    return 1;
}
