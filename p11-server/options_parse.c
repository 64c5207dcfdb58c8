/* Value parsers for tedge-p11-server's options: durations, octal socket modes, and users or
 * groups given by name or number. Pure functions, unit-tested on their own. */
#include "p11-server/server.h"

#include "common/config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parses a non-negative decimal number without sign, spaces or overflow; *end after it. */
static int parse_ulong(const char *s, unsigned long *out, const char **end)
{
    char *e;

    if (s == NULL || *s < '0' || *s > '9')
        return TE_ERR_INVALID;
    errno = 0;
    *out = strtoul(s, &e, 10);
    if (errno != 0)
        return TE_ERR_INVALID;
    *end = e;
    return TE_OK;
}

int srv_parse_duration_ms(const char *s, int *out_ms)
{
    uint64_t ms;

    /* the same syntax as tedge.toml's durations; a zero deadline would disable the check */
    if (s == NULL || cfg_parse_duration_ms(s, &ms) != TE_OK || ms == 0 || ms > SRV_TIMEOUT_MAX_MS)
        return TE_ERR_INVALID;
    *out_ms = (int)ms;
    return TE_OK;
}

int srv_parse_mode(const char *s, unsigned *out)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s < '0' || *s > '7')
        return TE_ERR_INVALID;
    errno = 0;
    v = strtoul(s, &end, 8);
    if (errno != 0 || *end != '\0' || v > 0777)
        return TE_ERR_INVALID;
    *out = (unsigned)v;
    return TE_OK;
}

/* A number that fits uid_t/gid_t and is not the (uid_t)-1 "no change" value. */
static int parse_id_number(const char *s, unsigned *out)
{
    unsigned long v;
    const char *end;

    if (parse_ulong(s, &v, &end) != TE_OK || *end != '\0' || v >= UINT_MAX)
        return TE_ERR_INVALID;
    *out = (unsigned)v;
    return TE_OK;
}

int srv_parse_uid(const char *s, unsigned *out)
{
    struct passwd pw, *res = NULL;
    char scratch[4096];

    if (s == NULL || *s == '\0')
        return TE_ERR_INVALID;
    if (parse_id_number(s, out) == TE_OK)
        return TE_OK;
    if (getpwnam_r(s, &pw, scratch, sizeof(scratch), &res) != 0 || res == NULL)
        return TE_ERR_NOT_FOUND;
    *out = (unsigned)res->pw_uid;
    return TE_OK;
}

int srv_parse_gid(const char *s, unsigned *out)
{
    struct group gr, *res = NULL;
    char scratch[16384]; /* a group entry lists its members */

    if (s == NULL || *s == '\0')
        return TE_ERR_INVALID;
    if (parse_id_number(s, out) == TE_OK)
        return TE_OK;
    if (getgrnam_r(s, &gr, scratch, sizeof(scratch), &res) != 0 || res == NULL)
        return TE_ERR_NOT_FOUND;
    *out = (unsigned)res->gr_gid;
    return TE_OK;
}
