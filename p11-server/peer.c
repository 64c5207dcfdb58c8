/* Peer credentials of a client connection (SO_PEERCRED, SO_PEERGROUPS) and the uid/gid
 * allow-lists that decide who may sign and who may use the admin operations. */
#include "p11-server/server.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool srv_idset_has(const struct srv_idset *set, unsigned id)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->ids[i] == id)
            return true;
    return false;
}

int srv_peer_from_socket(int fd, struct srv_peer *out, struct te_error *err)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    memset(out, 0, sizeof(*out));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return te_error_set(err, TE_ERR_IO, "Cannot read the peer credentials of a client: %s.",
                            strerror(errno));
    out->pid = cred.pid;
    out->uid = cred.uid;
    out->gid = cred.gid;
#ifdef SO_PEERGROUPS
    {
        gid_t groups[SRV_PEER_GROUPS_MAX];
        socklen_t glen = sizeof(groups);
        /* ERANGE: more groups than we look at; the primary gid and the uid still count. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
            out->n_groups = glen / sizeof(gid_t);
            memcpy(out->groups, groups, out->n_groups * sizeof(gid_t));
        }
    }
#endif
    return TE_OK;
}

/* True when the peer's uid is in uids or its primary or a supplementary gid is in gids. */
static bool peer_listed(const struct srv_peer *peer, const struct srv_idset *uids,
                        const struct srv_idset *gids)
{
    if (srv_idset_has(uids, peer->uid) || srv_idset_has(gids, peer->gid))
        return true;
    for (size_t i = 0; i < peer->n_groups; i++)
        if (srv_idset_has(gids, peer->groups[i]))
            return true;
    return false;
}

void srv_peer_authorize(const struct srv_acl *acl, struct srv_peer *peer)
{
    /* Root and our own uid can read the token store and ptrace us anyway: refusing them would
     * only break tooling, not protect anything. */
    bool trusted = peer->uid == 0 || peer->uid == geteuid();

    if (acl->allow_uid.n == 0 && acl->allow_gid.n == 0)
        peer->allowed = true; /* the socket's mode and group are the access control */
    else
        peer->allowed = trusted || peer_listed(peer, &acl->allow_uid, &acl->allow_gid);
    peer->admin = peer->allowed && (peer->uid == 0 || peer_listed(peer, &acl->admin_uid,
                                                                  &acl->admin_gid));
}
