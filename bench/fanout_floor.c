/*
 * The kernel's cost of a relay's fan-out on loopback, with no relay: the floor under the relay
 * benchmarks' CPU on this machine.
 *
 * Usage: fanout_floor sendto|sendmmsg RECEIVERS PACKETS_PER_SECOND SECONDS
 *
 * A child process pinned to core 0 binds RECEIVERS UDP sockets on 127.0.0.1 and reads them all,
 * sleeping in epoll_wait between datagrams as the load generator does. The parent, pinned to core
 * 1 as the relay is, sends each "packet" as one 1,200-byte datagram (a video RTP packet's size) to
 * every receiver, PACKETS_PER_SECOND times a second for SECONDS, either with `sendto` on one
 * unconnected socket per receiver (as the relay does) or with one `sendmmsg` call on one socket.
 * Between packets the sender sleeps, so each burst starts with cold caches and wakes the receiver,
 * as the relay's bursts do. On loopback the sender's core also runs the receiving half of each
 * datagram's path in the kernel, so the sender's user+system CPU is what the relay's core pays per
 * datagram before any relay work.
 *
 * Prints one JSON object on stdout; exits non-zero, with a message on stderr, on any error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    DATAGRAM_BYTES = 1200,
    SENDER_CORE = 1,
    RECEIVER_CORE = 0,
    MAX_RECEIVERS = 1024,
    /* Once told to stop, the receiver reads until nothing has arrived for this long. */
    DRAIN_MS = 200,
};

static const long long NS_PER_S = 1000000000LL;

static void die(const char *what)
{
    fprintf(stderr, "fanout_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void usage(const char *problem)
{
    fprintf(stderr,
            "fanout_floor: %s\nusage: fanout_floor sendto|sendmmsg RECEIVERS PACKETS_PER_SECOND "
            "SECONDS\n",
            problem);
    exit(2);
}

static void pin(int core)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

static long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * NS_PER_S + now.tv_nsec;
}

static void sleep_until(long long deadline_ns)
{
    struct timespec deadline = {deadline_ns / NS_PER_S, deadline_ns % NS_PER_S};
    int error;
    while ((error = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL)) == EINTR)
        ;
    if (error != 0) {
        errno = error;
        die("clock_nanosleep");
    }
}

static double seconds_of(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void write_all(int fd, const void *data, size_t size)
{
    if (write(fd, data, size) != (ssize_t)size)
        die("write to pipe");
}

/* Reads every datagram waiting on `sock`; returns how many. */
static long long drain(int sock)
{
    char buffer[2048];
    long long count = 0;
    for (;;) {
        ssize_t got = recv(sock, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got >= 0) {
            count++;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return count;
        } else if (errno != EINTR) {
            die("recv");
        }
    }
}

/* The child: reads the receivers until the parent closes `stop_fd`, then reports the count. */
static void receive(const int *sockets, int count, int stop_fd, int report_fd)
{
    pin(RECEIVER_CORE);
    int epoll = epoll_create1(0);
    if (epoll < 0)
        die("epoll_create1");
    for (int i = 0; i < count; i++) {
        struct epoll_event event = {.events = EPOLLIN, .data.fd = sockets[i]};
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, sockets[i], &event) != 0)
            die("epoll_ctl");
    }
    struct epoll_event stop = {.events = EPOLLIN, .data.fd = stop_fd};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, stop_fd, &stop) != 0)
        die("epoll_ctl");
    char ready = 'r';
    write_all(report_fd, &ready, 1);

    long long received = 0;
    int stopping = 0;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(epoll, events, 64, stopping ? DRAIN_MS : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            if (events[i].data.fd == stop_fd) {
                stopping = 1;
                if (epoll_ctl(epoll, EPOLL_CTL_DEL, stop_fd, NULL) != 0)
                    die("epoll_ctl");
            } else {
                received += drain(events[i].data.fd);
            }
        }
    }
    write_all(report_fd, &received, sizeof received);
    _exit(0);
}

/* One packet: the same datagram to every receiver. */
static void send_packet(int use_sendmmsg, const int *senders, const struct sockaddr_in *to,
                        struct mmsghdr *messages, int count, const char *data)
{
    if (use_sendmmsg) {
        for (int done = 0; done < count;) {
            int sent = sendmmsg(senders[0], messages + done, (unsigned)(count - done), 0);
            if (sent <= 0)
                die("sendmmsg");
            done += sent;
        }
        return;
    }
    for (int i = 0; i < count; i++) {
        ssize_t sent =
            sendto(senders[i], data, DATAGRAM_BYTES, 0, (const struct sockaddr *)&to[i], sizeof to[i]);
        if (sent != DATAGRAM_BYTES)
            die("sendto");
    }
}

int main(int argc, char **argv)
{
    if (argc != 5)
        usage("expected 4 arguments");
    int use_sendmmsg;
    if (strcmp(argv[1], "sendto") == 0)
        use_sendmmsg = 0;
    else if (strcmp(argv[1], "sendmmsg") == 0)
        use_sendmmsg = 1;
    else
        usage("the method is sendto or sendmmsg");
    char *end;
    long receivers = strtol(argv[2], &end, 10);
    if (*end || receivers < 1 || receivers > MAX_RECEIVERS)
        usage("RECEIVERS is a whole number from 1 to 1024");
    long rate = strtol(argv[3], &end, 10);
    if (*end || rate < 1 || rate > 1000000)
        usage("PACKETS_PER_SECOND is a whole number from 1 to 1000000");
    double seconds = strtod(argv[4], &end);
    if (*end || !(seconds > 0 && seconds <= 3600))
        usage("SECONDS is a number above 0, at most 3600");
    int count = (int)receivers;

    static int sockets[MAX_RECEIVERS];
    static struct sockaddr_in to[MAX_RECEIVERS];
    for (int i = 0; i < count; i++) {
        sockets[i] = socket(AF_INET, SOCK_DGRAM, 0);
        if (sockets[i] < 0)
            die("socket");
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(sockets[i], (struct sockaddr *)&address, sizeof address) != 0)
            die("bind");
        socklen_t length = sizeof to[i];
        if (getsockname(sockets[i], (struct sockaddr *)&to[i], &length) != 0)
            die("getsockname");
        /* So that a receiver kept off its core for a while (the machine is shared) drops nothing. */
        int buffer = 4 << 20;
        if (setsockopt(sockets[i], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer) != 0)
            die("setsockopt SO_RCVBUF");
    }

    int stop[2], report[2];
    if (pipe(stop) != 0 || pipe(report) != 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(stop[1]);
        close(report[0]);
        receive(sockets, count, stop[0], report[1]);
    }
    close(stop[0]);
    close(report[1]);
    for (int i = 0; i < count; i++)
        close(sockets[i]);
    char ready;
    if (read(report[0], &ready, 1) != 1) {
        fprintf(stderr, "fanout_floor: the receiver failed to start\n");
        return 1;
    }

    pin(SENDER_CORE);
    static int senders[MAX_RECEIVERS];
    int sender_count = use_sendmmsg ? 1 : count;
    for (int i = 0; i < sender_count; i++) {
        senders[i] = socket(AF_INET, SOCK_DGRAM, 0);
        if (senders[i] < 0)
            die("socket");
    }
    static char data[DATAGRAM_BYTES];
    memset(data, 0x5a, sizeof data);
    static struct iovec vectors[MAX_RECEIVERS];
    static struct mmsghdr messages[MAX_RECEIVERS];
    for (int i = 0; i < count; i++) {
        vectors[i] = (struct iovec){.iov_base = data, .iov_len = sizeof data};
        messages[i].msg_hdr = (struct msghdr){
            .msg_name = &to[i], .msg_namelen = sizeof to[i], .msg_iov = &vectors[i], .msg_iovlen = 1};
    }

    /* Absolute deadlines: a late wake-up shortens the next sleep instead of slowing the rate. */
    long long packets = (long long)((double)rate * seconds + 0.5);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    long long start = monotonic_ns();
    for (long long i = 0; i < packets; i++) {
        sleep_until(start + i * NS_PER_S / rate);
        send_packet(use_sendmmsg, senders, to, messages, count, data);
    }
    /* The measured window is whole periods: the last packet's period ends before it closes. */
    sleep_until(start + packets * NS_PER_S / rate);
    getrusage(RUSAGE_SELF, &after);
    double wall = (double)(monotonic_ns() - start) / 1e9;

    close(stop[1]);
    long long received;
    if (read(report[0], &received, sizeof received) != (ssize_t)sizeof received) {
        fprintf(stderr, "fanout_floor: the receiver failed before reporting\n");
        return 1;
    }
    int status;
    if (waitpid(child, &status, 0) != child)
        die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fanout_floor: the receiver failed\n");
        return 1;
    }

    double user = seconds_of(after.ru_utime) - seconds_of(before.ru_utime);
    double system = seconds_of(after.ru_stime) - seconds_of(before.ru_stime);
    long long sent = packets * count;
    printf("{\"method\": \"%s\", \"receivers\": %d, \"packets_per_second\": %ld, \"seconds\": %.3f, "
           "\"datagrams_sent\": %lld, \"datagrams_received\": %lld, "
           "\"us_cpu_per_datagram\": %.3f, \"us_kernel_per_datagram\": %.3f, "
           "\"cpu_pct_one_core\": %.3f}\n",
           argv[1], count, rate, wall, sent, received, (user + system) / (double)sent * 1e6,
           system / (double)sent * 1e6, (user + system) / wall * 100);
    return 0;
}
