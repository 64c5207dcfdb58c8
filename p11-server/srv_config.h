/* The daemon's view of <config-dir>/tedge.toml: [device.cryptoki] values as written in the file,
 * read on first use so that a missing or broken file matters only when a value is needed. */
#ifndef TEDGE_P11_SERVER_SRV_CONFIG_H
#define TEDGE_P11_SERVER_SRV_CONFIG_H

#include <stdbool.h>

#include "common/err.h"

struct srv_config;

/* No I/O yet: only remembers where tedge.toml is. */
int srv_config_new(const char *config_dir, struct srv_config **out, struct te_error *err);
void srv_config_free(struct srv_config *c);

/* The string value of key ("device.cryptoki.module_path") as set in the file, malloc'd in *out
 * (NULL when the file or the key is absent). The file is read on the first call; a file that
 * cannot be read or parsed is an error (file:line:col) on every call. An empty string in the
 * file counts as unset. */
int srv_config_get(struct srv_config *c, const char *key, char **out, struct te_error *err);

/* <config-dir>/tedge.toml */
const char *srv_config_path(const struct srv_config *c);
/* Whether the file was found (false until a value was looked up). */
bool srv_config_exists(const struct srv_config *c);

#endif
