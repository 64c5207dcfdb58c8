/* Unit tests for tedge-p11-server's listener: mode and parent directories, the lock that stops a
 * second instance, stale-socket reclaim, refusing live sockets and non-sockets, activation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "p11-server/server.h"
#include "unit_helpers.h"

struct fixture {
    char dir[40];
    char sock[96]; /* fits sun_path */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    static int devnull = -1;

    snprintf(f->dir, sizeof(f->dir), "/tmp/test-srv-lis.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->sock, sizeof(f->sock), "%.40s/run/sub/p11.sock", f->dir);
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    log_set_fd(devnull);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (unit_remove_dir(f->dir) != 0)
        return -1;
    free(f);
    return 0;
}

static void set_path(struct sockaddr_un *sa, const char *path)
{
    assert_true(strlen(path) < sizeof(sa->sun_path));
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    set_path(&sa, path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A socket file nobody listens on any more, as a kill -9 leaves it. */
static void make_stale_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    set_path(&sa, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    close(fd);
}

static void test_creates_dirs_mode_and_removes_on_close(void **state)
{
    struct fixture *f = *state;
    struct srv_listen_config cfg = {.socket_path = f->sock, .mode = 0640, .has_group = true,
                                    .group = 0};
    struct srv_listener l;
    struct te_error err = {0};
    struct stat st;
    char lock[160];
    int c;

    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_OK);
    assert_false(l.activated);
    assert_int_equal(stat(f->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_gid, 0);
    snprintf(lock, sizeof(lock), "%s.lock", f->sock);
    assert_int_equal(access(lock, F_OK), 0);
    assert_true((c = connect_to(f->sock)) >= 0);
    close(c);
    srv_listener_close(&l);
    assert_int_equal(access(f->sock, F_OK), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_second_instance_is_refused_by_the_lock(void **state)
{
    struct fixture *f = *state;
    struct srv_listen_config cfg = {.socket_path = f->sock, .mode = 0660};
    struct srv_listener first, second;
    struct te_error err = {0};
    char want[512];
    int c;

    assert_int_equal(srv_listener_open(&cfg, &first, &err), TE_OK);
    assert_int_equal(srv_listener_open(&cfg, &second, &err), TE_ERR_EXISTS);
    snprintf(want, sizeof(want), "Another tedge-p11-server is already serving %s (lock %s.lock "
             "held).", f->sock, f->sock);
    assert_string_equal(err.msg, want);
    /* the first keeps its socket */
    assert_true((c = connect_to(f->sock)) >= 0);
    close(c);
    srv_listener_close(&first);
}

static void test_stale_socket_is_reclaimed(void **state)
{
    struct fixture *f = *state;
    struct srv_listen_config cfg = {.socket_path = f->sock, .mode = 0660};
    struct srv_listener l;
    struct te_error err = {0};
    char dir[128];
    int c;

    snprintf(dir, sizeof(dir), "%s/run", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/run/sub", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    make_stale_socket(f->sock);
    assert_int_equal(connect_to(f->sock), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_OK);
    assert_true((c = connect_to(f->sock)) >= 0);
    close(c);
    srv_listener_close(&l);
}

static void test_live_socket_and_regular_file_are_left_alone(void **state)
{
    struct fixture *f = *state;
    struct srv_listen_config cfg = {.socket_path = f->sock, .mode = 0660};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct srv_listener l;
    struct te_error err = {0};
    char dir[128];
    int live, c;

    snprintf(dir, sizeof(dir), "%s/run", f->dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/run/sub", f->dir);
    mkdir(dir, 0755);
    /* a server that serves without our lock (flock a no-op, or another program) */
    live = socket(AF_UNIX, SOCK_STREAM, 0);
    set_path(&sa, f->sock);
    assert_int_equal(bind(live, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(live, 4), 0);
    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "already listening"));
    assert_true((c = connect_to(f->sock)) >= 0);
    close(c);
    close(live);
    unlink(f->sock);

    FILE *fp = fopen(f->sock, "w");
    fputs("precious", fp);
    fclose(fp);
    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "is not a socket"));
    assert_int_equal(access(f->sock, F_OK), 0);
}

static void test_too_long_path_is_refused(void **state)
{
    (void)state;
    char path[200];
    struct srv_listen_config cfg = {.socket_path = path, .mode = 0660};
    struct srv_listener l;
    struct te_error err = {0};

    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "107"));
}

static void test_socket_activation_uses_fd_3_and_keeps_path(void **state)
{
    struct fixture *f = *state;
    struct srv_listen_config cfg = {.socket_path = "/nonexistent/ignored.sock", .mode = 0660};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct srv_listener l;
    struct te_error err = {0};
    char pid[32];
    int s, c;

    snprintf(f->sock, sizeof(f->sock), "%.40s/act.sock", f->dir);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    set_path(&sa, f->sock);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 4), 0);
    assert_int_equal(dup2(s, 3), 3);
    close(s);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_OK);
    assert_true(l.activated);
    assert_int_equal(l.fd, 3);
    assert_null(getenv("LISTEN_FDS")); /* unset so that children do not inherit it */
    assert_true((c = connect_to(f->sock)) >= 0);
    close(c);
    srv_listener_close(&l);
    assert_int_equal(access(f->sock, F_OK), 0); /* systemd's socket stays */

    /* a passed socket that is not listening is refused */
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s != 3) { /* fd 3 is free again after the close above, so socket() may pick it */
        assert_int_equal(dup2(s, 3), 3);
        close(s);
    }
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    assert_int_equal(srv_listener_open(&cfg, &l, &err), TE_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "not a listening"));
    close(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_creates_dirs_mode_and_removes_on_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_instance_is_refused_by_the_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_socket_is_reclaimed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_socket_and_regular_file_are_left_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_too_long_path_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_activation_uses_fd_3_and_keeps_path, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
