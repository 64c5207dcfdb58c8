/* Internals shared by the config files (config.c: loading and reading, config_write.c:
 * set/unset and key listing). Nothing outside common/config*.c includes this file. */
#ifndef TEDGE_COMMON_CONFIG_INTERNAL_H
#define TEDGE_COMMON_CONFIG_INTERNAL_H

#include "common/config.h"
#include "common/toml.h"

struct cfg {
    char *dir;
    char *path;
    struct toml_doc *doc; /* NULL when tedge.toml does not exist */
};

/* Reads and parses path; a missing file gives *out == NULL and TE_OK. A file that does not
 * parse is an error whose message names file:line:col and says the file stays untouched. */
int cfg_read_file(const char *path, struct toml_doc **out, struct te_error *err);

#endif
