/*
 * loadgen.c - closed-loop echo load generator for the echo benchmarks.
 *
 * One thread, one epoll set (Linux only: this is a measuring tool, not part
 * of the library).  It opens -c connections to an echo server on 127.0.0.1,
 * and then keeps -d messages of -s bytes in flight on each: a connection
 * sends its next message only when the echo of an earlier one has fully come
 * back, so the rate is set by the server (a "closed loop").  Every echoed
 * byte is compared with what was sent.
 *
 * The bytes of connection i's stream at offset p are pat[(p + salt_i) % 251]:
 * a period that is prime and not a divisor of any message size, so a lost,
 * repeated or reordered byte shows up, and sending or checking any run of
 * bytes is one send() from, or one memcmp() against, the pattern buffer
 * (no per-message fill).
 *
 * Phases: connect all, then -w seconds of uncounted warm-up, then either -t
 * seconds or exactly -n round trips are measured.  The run is bounded: -T
 * (default: the planned time plus 30 s) stops it whatever happens.
 *
 * Output: one line of key=value fields on stdout (see print_result), and a
 * non-zero exit status on any error (bad echo, reset, timeout).
 *
 * Server CPU time (-P PID) is read through clock_getcpuclockid(), which gives
 * the process's on-CPU time in nanoseconds (all threads); if that is refused
 * it falls back to utime+stime from /proc/PID/stat (clock ticks, 10 ms).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251u                 /* pattern period (prime) */
#define CHUNK (256u * 1024u)        /* largest single send()/recv() */
#define HIST_US 100000u             /* latency histogram: 1 us buckets to 100 ms */
#define MAX_CONNS 20000
#define MAX_SIZE (16u * 1024u * 1024u)
#define MAX_DEPTH 1024
#define STALL_NS 3000000000ull       /* an echo this late is an error */

struct conn {
    int fd;
    unsigned salt;      /* stream offset into the pattern */
    uint64_t tx;        /* bytes sent */
    uint64_t tx_limit;  /* bytes of the messages started so far */
    uint64_t rx;        /* bytes received and checked */
    uint64_t started;   /* messages started */
    uint64_t done;      /* messages whose echo is complete */
    uint64_t *t_start;  /* ring of depth start times (ns) */
    int want_out;       /* EPOLLOUT registered */
};

static struct {
    int conns, idle, depth;
    size_t size;
    double warm_s, meas_s, limit_s;
    uint64_t count;     /* -n: exact measured round trips, 0 = timed */
    const char *host;
    int port;
    pid_t pid;
    int verbose;
} opt = { 1, 0, 1, 1024, 1.0, 5.0, 0, 0, "127.0.0.1", 0, 0, 0 };

static unsigned char *pat;
static unsigned char *rbuf;
static struct conn *cs;
static int ep = -1;
static uint32_t *hist;
static uint64_t hist_over;
static uint64_t errors;

enum phase { WARM, MEAS, FINISHED };
static enum phase phase = WARM;
static uint64_t completed;      /* completions in the measured phase */
static uint64_t issue_budget;   /* -n: messages still to start, measured phase */
static int stopping;            /* no new messages */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t self_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* Server on-CPU time in ns, or -1 if it cannot be read. */
static int64_t server_cpu_ns(void)
{
    clockid_t clk;
    struct timespec ts;
    char path[64], buf[1024];
    FILE *f;
    size_t n;
    char *p;
    unsigned long long ut, st;

    if (opt.pid <= 0)
        return -1;
    if (clock_getcpuclockid(opt.pid, &clk) == 0 && clock_gettime(clk, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)opt.pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');  /* comm may contain spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

static void usage(void)
{
    fprintf(stderr,
        "usage: loadgen -p PORT [-H 127.0.0.1] [-c CONNS] [-s SIZE] [-d DEPTH]\n"
        "               [-w WARMUP_S] [-t SECONDS | -n ROUNDTRIPS] [-i IDLE]\n"
        "               [-P SERVER_PID] [-T LIMIT_S] [-v]\n"
        "  closed-loop echo load: CONNS connections, DEPTH messages of SIZE bytes\n"
        "  in flight on each; every echoed byte is checked.  Defaults: -c 1 -s 1024\n"
        "  -d 1 -w 1 -t 5.  -n measures exactly ROUNDTRIPS round trips instead.\n"
        "  -i opens IDLE extra connections that never send.  -P samples that\n"
        "  process's CPU time.  -T bounds the whole run (default planned + 30 s).\n"
        "  Only loopback (127.0.0.0/8) targets are accepted.\n");
    exit(2);
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "loadgen: bad %s '%s' (%ld..%ld)\n", what, s, lo, hi);
        exit(2);
    }
    return v;
}

static double parse_secs(const char *s, const char *what)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= 0 && v <= 3600)) {
        fprintf(stderr, "loadgen: bad %s '%s' (0..3600 s)\n", what, s);
        exit(2);
    }
    return v;
}

static void fail_conn(struct conn *c, const char *what, int err)
{
    fprintf(stderr, "loadgen: connection %d: %s%s%s\n", (int)(c - cs), what,
            err ? ": " : "", err ? strerror(err) : "");
    errors++;
    phase = FINISHED;
}

/* Start as many messages on c as depth and the budget allow. */
static void start_messages(struct conn *c, uint64_t now)
{
    while (!stopping && c->started < c->done + (uint64_t)opt.depth) {
        if (phase == MEAS && opt.count) {
            if (issue_budget == 0)
                break;
            issue_budget--;
        }
        c->t_start[c->started % (uint64_t)opt.depth] = now;
        c->started++;
        c->tx_limit += opt.size;
    }
}

static void set_out(struct conn *c, int on)
{
    struct epoll_event ev;
    if (c->want_out == on)
        return;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.u32 = (uint32_t)(c - cs);
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        fail_conn(c, "epoll_ctl", errno);
        return;
    }
    c->want_out = on;
}

static void flush(struct conn *c)
{
    while (c->tx < c->tx_limit) {
        uint64_t left = c->tx_limit - c->tx;
        size_t len = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t n = send(c->fd, pat + (c->tx + c->salt) % PERIOD, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out(c, 1);
                return;
            }
            fail_conn(c, "send", errno);
            return;
        }
        c->tx += (uint64_t)n;
    }
    set_out(c, 0);
}

static void on_readable(struct conn *c, uint64_t now)
{
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, CHUNK, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fail_conn(c, "recv", errno);
            break;
        }
        if (n == 0) {
            fail_conn(c, "server closed the connection", 0);
            return;
        }
        if (c->rx + (uint64_t)n > c->tx) {
            fail_conn(c, "server sent more bytes than it was sent", 0);
            return;
        }
        if (memcmp(rbuf, pat + (c->rx + c->salt) % PERIOD, (size_t)n) != 0) {
            fail_conn(c, "echoed bytes differ from the bytes sent", 0);
            return;
        }
        c->rx += (uint64_t)n;
        while (c->rx >= (c->done + 1) * opt.size) {
            uint64_t t0 = c->t_start[c->done % (uint64_t)opt.depth];
            c->done++;
            if (phase == MEAS) {
                uint64_t us = (now - t0) / 1000u;
                if (us < HIST_US)
                    hist[us]++;
                else
                    hist_over++;
                completed++;
                if (opt.count && completed == opt.count)
                    stopping = 1;
            }
        }
        if ((size_t)n < CHUNK)
            break;  /* level-triggered: the rest, if any, comes next turn */
    }
    start_messages(c, now);
    flush(c);
}

static double percentile(double q)
{
    uint64_t total = completed, want, acc = 0;
    uint32_t i;
    if (total == 0)
        return 0;
    want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (i = 0; i < HIST_US; i++) {
        acc += hist[i];
        if (acc > want)
            return (double)i + 0.5;
    }
    return (double)HIST_US;
}

static int connect_one(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct timeval tv = { 5, 0 };
    if (fd < 0)
        return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)sa, sizeof *sa) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct epoll_event evs[512];
    int *idle_fds = NULL;
    int ch, i, timed = 1;
    uint64_t t_begin, t_warm_end, t_meas_start = 0, t_meas_end = 0, t_deadline, now;
    int64_t srv0 = -1, srv1 = -1;
    uint64_t self0 = 0, self1;
    double secs;

    while ((ch = getopt(argc, argv, "c:s:d:w:t:n:i:p:H:P:T:v")) != -1) {
        switch (ch) {
        case 'c': opt.conns = (int)parse_long(optarg, 1, MAX_CONNS, "connections"); break;
        case 's': opt.size = (size_t)parse_long(optarg, 1, MAX_SIZE, "size"); break;
        case 'd': opt.depth = (int)parse_long(optarg, 1, MAX_DEPTH, "depth"); break;
        case 'w': opt.warm_s = parse_secs(optarg, "warm-up"); break;
        case 't': opt.meas_s = parse_secs(optarg, "time"); timed = 1; opt.count = 0; break;
        case 'n': opt.count = (uint64_t)parse_long(optarg, 1, 1000000000L, "count"); timed = 0; break;
        case 'i': opt.idle = (int)parse_long(optarg, 0, MAX_CONNS, "idle connections"); break;
        case 'p': opt.port = (int)parse_long(optarg, 1, 65535, "port"); break;
        case 'H': opt.host = optarg; break;
        case 'P': opt.pid = (pid_t)parse_long(optarg, 1, INT_MAX, "pid"); break;
        case 'T': opt.limit_s = parse_secs(optarg, "limit"); break;
        case 'v': opt.verbose = 1; break;
        default: usage();
        }
    }
    if (optind != argc || opt.port == 0)
        usage();
    if (strcmp(opt.host, "localhost") == 0)
        opt.host = "127.0.0.1";
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1 ||
        (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: only loopback IPv4 targets (127.x.y.z) are allowed, not '%s'\n",
                opt.host);
        return 2;
    }
    if (opt.limit_s == 0)
        opt.limit_s = opt.warm_s + (timed ? opt.meas_s : 60.0) + 30.0;

    pat = malloc(PERIOD + CHUNK);
    rbuf = malloc(CHUNK);
    hist = calloc(HIST_US, sizeof *hist);
    cs = calloc((size_t)opt.conns, sizeof *cs);
    idle_fds = calloc((size_t)opt.idle + 1, sizeof *idle_fds);
    if (!pat || !rbuf || !hist || !cs || !idle_fds) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (i = 0; i < (int)(PERIOD + CHUNK); i++)
        pat[i] = (unsigned char)(((unsigned)i % PERIOD) * 97u + 13u);
    raise_nofile(opt.conns + opt.idle + 64);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("loadgen: epoll_create1");
        return 1;
    }
    for (i = 0; i < opt.conns; i++) {
        struct conn *c = &cs[i];
        struct epoll_event ev;
        c->fd = connect_one(&sa);
        if (c->fd < 0) {
            fprintf(stderr, "loadgen: connect %d to %s:%d: %s\n", i, opt.host, opt.port,
                    strerror(errno));
            return 1;
        }
        c->salt = (unsigned)(i * 37) % PERIOD;
        c->t_start = calloc((size_t)opt.depth, sizeof *c->t_start);
        if (!c->t_start) {
            fprintf(stderr, "loadgen: out of memory\n");
            return 1;
        }
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            perror("loadgen: epoll_ctl");
            return 1;
        }
    }
    for (i = 0; i < opt.idle; i++) {
        idle_fds[i] = connect_one(&sa);
        if (idle_fds[i] < 0) {
            fprintf(stderr, "loadgen: connect idle %d: %s\n", i, strerror(errno));
            return 1;
        }
    }

    t_begin = now_ns();
    t_warm_end = t_begin + (uint64_t)(opt.warm_s * 1e9);
    t_deadline = t_begin + (uint64_t)(opt.limit_s * 1e9);
    if (opt.warm_s == 0) {
        phase = MEAS;
        t_meas_start = t_begin;
        t_meas_end = t_begin + (uint64_t)(opt.meas_s * 1e9);
        issue_budget = opt.count;
        srv0 = server_cpu_ns();
        self0 = self_cpu_ns();
    }
    for (i = 0; i < opt.conns; i++) {
        start_messages(&cs[i], t_begin);
        flush(&cs[i]);
    }

    while (phase != FINISHED) {
        int n, timeout_ms;
        uint64_t next;
        now = now_ns();
        if (now >= t_deadline) {
            fprintf(stderr, "loadgen: time limit of %.1f s reached\n", opt.limit_s);
            errors++;
            break;
        }
        if (phase == WARM && now >= t_warm_end) {
            /* Messages in flight now complete in the measured phase and
             * count there; with -n they use up part of the budget. */
            uint64_t inflight = 0;
            for (i = 0; i < opt.conns; i++)
                inflight += cs[i].started - cs[i].done;
            phase = MEAS;
            t_meas_start = now;
            t_meas_end = now + (uint64_t)(opt.meas_s * 1e9);
            issue_budget = opt.count > inflight ? opt.count - inflight : 0;
            srv0 = server_cpu_ns();
            self0 = self_cpu_ns();
        }
        if (phase == MEAS && ((timed && now >= t_meas_end) || (!timed && stopping)))
            break;
        next = phase == WARM ? t_warm_end : timed ? t_meas_end : t_deadline;
        timeout_ms = next > now ? (int)((next - now + 999999u) / 1000000u) : 0;
        n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: epoll_wait");
            errors++;
            break;
        }
        now = now_ns();
        for (i = 0; i < n && phase != FINISHED; i++) {
            struct conn *c = &cs[evs[i].data.u32];
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c, now);
            if (phase != FINISHED && (evs[i].events & EPOLLOUT))
                flush(c);
        }
    }
    now = now_ns();
    if (timed && phase == MEAS && now > t_meas_end)
        now = t_meas_end; /* completions after the end were not counted */
    srv1 = server_cpu_ns();
    self1 = self_cpu_ns();
    /* A server that loses bytes does not fail a timed run by itself: the
     * connection just stops.  Call an echo missing for over STALL_NS an error. */
    for (i = 0; i < opt.conns && !errors; i++) {
        struct conn *c = &cs[i];
        if (c->started > c->done &&
            now_ns() - c->t_start[c->done % (uint64_t)opt.depth] > STALL_NS) {
            fprintf(stderr, "loadgen: connection %d: no echo for over %u s\n", i,
                    (unsigned)(STALL_NS / 1000000000u));
            errors++;
        }
    }
    secs = t_meas_start ? (double)(now - t_meas_start) / 1e9 : 0;

    printf("rtt_per_s=%.1f p50_us=%.1f p99_us=%.1f total=%llu secs=%.3f errors=%llu "
           "conns=%d size=%zu depth=%d",
           secs > 0 ? (double)completed / secs : 0.0, percentile(0.50), percentile(0.99),
           (unsigned long long)completed, secs, (unsigned long long)errors,
           opt.conns, opt.size, opt.depth);
    if (srv0 >= 0 && srv1 >= 0 && completed)
        printf(" srv_cpu_us_per_rt=%.3f", (double)(srv1 - srv0) / 1e3 / (double)completed);
    else
        printf(" srv_cpu_us_per_rt=na");
    if (completed && t_meas_start)
        printf(" lg_cpu_us_per_rt=%.3f\n", (double)(self1 - self0) / 1e3 / (double)completed);
    else
        printf(" lg_cpu_us_per_rt=na\n");
    if (opt.verbose && hist_over)
        fprintf(stderr, "loadgen: %llu round trips over %u us\n",
                (unsigned long long)hist_over, HIST_US);
    fflush(stdout);

    for (i = 0; i < opt.conns; i++) {
        close(cs[i].fd);
        free(cs[i].t_start);
    }
    for (i = 0; i < opt.idle; i++)
        close(idle_fds[i]);
    close(ep);
    free(idle_fds);
    free(cs);
    free(hist);
    free(rbuf);
    free(pat);
    return errors ? 1 : 0;
}
