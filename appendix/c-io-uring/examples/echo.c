/* echo.c - an echo server on io_uring, and its client.
 *
 *     uring_echo --server [--port P] [--seconds N]
 *     uring_echo --client --port P [--connections C] [--messages M] [--size B]
 *     uring_echo --self [--connections C] [--messages M] [--size B]
 *
 * The server (echo_server.c) accepts with one multishot ACCEPT and reads
 * every connection with one multishot RECV on a shared provided-buffer
 * ring: a connection that says nothing holds no buffer. The client connects
 * C sockets with CONNECT and sends M messages of B bytes on each, one at a
 * time, checking every byte that comes back. --self runs both in one
 * process (the server on a thread of its own); the tests run it.
 *
 * Exit status: 0 all echoed and checked, 1 something went wrong, 2 usage,
 * 77 io_uring is unavailable here (the reason is printed).
 */
#define _GNU_SOURCE /* sigaction */
#include "echo_server.h"

#include "evq_args.h"
#include "evq_thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { EXIT_UNAVAILABLE = 77 };
enum { KIND_CONNECT = 1, KIND_SEND, KIND_RECV };

static bool unavailable(int code)
{
    return code == EVQ_ENOTSUP || code == EVQ_EACCES;
}

/* ---- the client --------------------------------------------------------------------- */

struct peer {
    int fd;
    unsigned message; /* messages echoed so far */
    size_t sent, received;
    unsigned char *out, *in;
};

struct client {
    evq_uring ring;
    struct sockaddr_in address;
    unsigned connections, messages;
    size_t size;
    struct peer *peers;
    unsigned done;
    uint64_t round_trips;
    bool failed;
};

/* Message n of connection c: bytes that differ per connection and message. */
static void fill_message(unsigned char *out, size_t size, unsigned c, unsigned n)
{
    for (size_t i = 0; i < size; i++)
        out[i] = (unsigned char)('a' + (c * 7 + n * 3 + i) % 26);
}

static int client_queue(struct client *client, unsigned kind, unsigned c)
{
    struct io_uring_sqe *sqe;
    int code = evq_uring_next_sqe(&client->ring, &sqe);
    if (code != 0)
        return code;
    struct peer *p = &client->peers[c];
    uint64_t tag = evq_uring_tag(kind, 0, c);
    if (kind == KIND_CONNECT)
        evq_uring_prep_connect(sqe, p->fd, (struct sockaddr *)&client->address,
                               sizeof client->address, tag);
    else if (kind == KIND_SEND)
        evq_uring_prep_send(sqe, p->fd, p->out + p->sent, client->size - p->sent, MSG_NOSIGNAL,
                            tag);
    else
        evq_uring_prep_recv(sqe, p->fd, p->in + p->received, client->size - p->received, 0, tag);
    return 0;
}

static void client_fail(struct client *client, unsigned c, const char *what, int32_t res)
{
    fprintf(stderr, "client: connection %u: %s (%s)\n", c, what,
            res < 0 ? evq_strerror(evq_uring_error(res)) : "wrong bytes");
    client->failed = true;
}

static void client_next_message(struct client *client, unsigned c)
{
    struct peer *p = &client->peers[c];
    if (p->message == client->messages) {
        client->done++;
        close(p->fd);
        p->fd = -1;
        return;
    }
    fill_message(p->out, client->size, c, p->message);
    p->sent = p->received = 0;
    if (client_queue(client, KIND_SEND, c) != 0 || client_queue(client, KIND_RECV, c) != 0)
        client_fail(client, c, "no room in the ring", 0);
}

/* The SEND and the RECV of a message are both in flight, and the RECV may
 * complete first (the echo is back before the SEND's completion is reaped):
 * the next message starts only when both are done, so that its buffers are
 * not rewritten under a completion still to come. */
static void client_dispatch(struct client *client, const struct io_uring_cqe *cqe)
{
    unsigned kind = evq_uring_tag_kind(cqe->user_data);
    unsigned c = evq_uring_tag_slot(cqe->user_data);
    struct peer *p = &client->peers[c];
    if (p->fd < 0)
        return; /* a connection already given up */
    if (cqe->res < 0 || (kind == KIND_RECV && cqe->res == 0)) {
        client_fail(client, c, kind == KIND_CONNECT ? "connect" : "send or receive", cqe->res);
        client->done++;
        close(p->fd);
        p->fd = -1;
        return;
    }
    if (kind == KIND_CONNECT) {
        client_next_message(client, c);
        return;
    }
    if (kind == KIND_SEND) {
        p->sent += (size_t)cqe->res;
        if (p->sent < client->size && client_queue(client, KIND_SEND, c) != 0)
            client_fail(client, c, "no room in the ring", 0);
    } else {
        p->received += (size_t)cqe->res;
        if (p->received < client->size && client_queue(client, KIND_RECV, c) != 0)
            client_fail(client, c, "no room in the ring", 0);
        if (p->received == client->size && memcmp(p->in, p->out, client->size) != 0)
            client_fail(client, c, "the echo differs from the message", 1);
    }
    if (p->sent == client->size && p->received == client->size) {
        client->round_trips++;
        p->message++;
        client_next_message(client, c);
    }
}

static int client_run(uint16_t port, unsigned connections, unsigned messages, size_t size,
                      char *reason, size_t reason_size)
{
    struct client client;
    memset(&client, 0, sizeof client);
    client.connections = connections;
    client.messages = messages;
    client.size = size;
    client.address.sin_family = AF_INET;
    client.address.sin_port = htons(port);
    client.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    evq_uring_options options = {256, 1024, EVQ_URING_WANT_DEFER_TASKRUN};
    int code = evq_uring_open(&client.ring, &options);
    if (code != 0) {
        snprintf(reason, reason_size, "%s", client.ring.reason);
        return code;
    }
    client.peers = calloc(connections, sizeof *client.peers);
    unsigned char *memory = calloc(connections, 2 * size);
    if (!client.peers || !memory)
        code = EVQ_ENOMEM;
    for (unsigned c = 0; c < connections && code == 0; c++) {
        struct peer *p = &client.peers[c];
        p->out = memory + 2 * size * c;
        p->in = p->out + size;
        p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->fd < 0)
            code = evq_error_from_errno(errno);
        else
            code = client_queue(&client, KIND_CONNECT, c);
    }
    while (code == 0 && client.done < connections) {
        code = evq_uring_submit_and_wait(&client.ring, 1, 10000);
        struct io_uring_cqe *cqe;
        while (code == 0 && evq_uring_peek(&client.ring, &cqe) == 0) {
            client_dispatch(&client, cqe);
            evq_uring_advance(&client.ring, 1);
        }
    }
    if (code != 0)
        snprintf(reason, reason_size, "client: %s", evq_strerror(code));
    else
        printf("client: %u connections x %u messages of %zu bytes echoed and checked: %s; "
               "%llu io_uring_enter calls for %llu round trips\n",
               connections, messages, size, client.failed ? "FAILED" : "all equal",
               (unsigned long long)client.ring.enter_calls, (unsigned long long)client.round_trips);
    evq_uring_close(&client.ring);
    for (unsigned c = 0; client.peers && c < connections; c++) {
        if (client.peers[c].fd >= 0)
            close(client.peers[c].fd);
    }
    free(client.peers);
    free(memory);
    return code != 0 ? code : client.failed ? EVQ_EIO : 0;
}

/* ---- the programs --------------------------------------------------------------------- */

static echo_server *signalled_server;

static void on_signal(int signal_number)
{
    (void)signal_number;
    int saved = errno; /* a handler leaves errno as it found it */
    echo_server_stop(signalled_server);
    errno = saved;
}

static void print_server(const echo_server *server)
{
    printf("server: %llu connections accepted, %llu bytes echoed, %llu completions, "
           "%llu io_uring_enter calls; %llu receives re-armed after the buffer ring ran dry\n",
           (unsigned long long)server->accepted, (unsigned long long)server->bytes_echoed,
           (unsigned long long)server->completions, (unsigned long long)server->ring.enter_calls,
           (unsigned long long)server->rearmed);
}

static int run_server(uint16_t port, unsigned seconds)
{
    static echo_server server;
    int code = echo_server_open(&server, port, seconds);
    if (code != 0) {
        printf("%s\n", server.ring.reason[0] ? server.ring.reason : evq_strerror(code));
        echo_server_close(&server);
        echo_server_free(&server);
        return unavailable(code) ? EXIT_UNAVAILABLE : 1;
    }
    signalled_server = &server;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    printf("echo server on 127.0.0.1:%u (multishot accept, multishot receive on %d buffers "
           "of %d bytes); Ctrl-C stops it\n",
           server.port, ECHO_BUFFERS, ECHO_BUFFER_SIZE);
    fflush(stdout);
    code = echo_server_run(&server);
    echo_server_close(&server);
    /* No handler may touch the waker once it is closed. */
    action.sa_handler = SIG_DFL;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    echo_server_free(&server);
    print_server(&server);
    return code == 0 ? 0 : 1;
}

/* --self: the server on a thread, the client on this one. */
struct self_test {
    echo_server server;
    evq_mutex lock;
    evq_cond ready;
    int state; /* 0 starting, 1 listening, -1 failed */
    int open_code, run_code;
};

static void server_thread(void *arg)
{
    struct self_test *self = arg;
    /* Open, run and close on this thread: with SINGLE_ISSUER (and
     * DEFER_TASKRUN) only the thread that created the ring may submit to it
     * or wait on it. */
    int code = echo_server_open(&self->server, 0, 0);
    evq_mutex_lock(&self->lock);
    self->state = code == 0 ? 1 : -1;
    self->open_code = code;
    evq_cond_signal(&self->ready);
    evq_mutex_unlock(&self->lock);
    if (code == 0)
        self->run_code = echo_server_run(&self->server);
    echo_server_close(&self->server);
}

static int run_self(unsigned connections, unsigned messages, size_t size)
{
    static struct self_test self;
    evq_mutex_init(&self.lock);
    evq_cond_init(&self.ready);
    evq_thread thread;
    if (evq_thread_start(&thread, server_thread, &self) != 0)
        return 1;
    evq_mutex_lock(&self.lock);
    while (self.state == 0)
        evq_cond_wait(&self.ready, &self.lock);
    evq_mutex_unlock(&self.lock);

    int status = 0;
    if (self.state < 0) {
        evq_thread_join(&thread);
        echo_server_free(&self.server);
        printf("%s\n",
               self.server.ring.reason[0] ? self.server.ring.reason : evq_strerror(self.open_code));
        status = unavailable(self.open_code) ? EXIT_UNAVAILABLE : 1;
    } else {
        char reason[256] = "";
        int code = client_run(self.server.port, connections, messages, size, reason, sizeof reason);
        if (code != 0) {
            printf("%s\n", reason[0] ? reason : evq_strerror(code));
            status = unavailable(code) ? EXIT_UNAVAILABLE : 1;
        }
        echo_server_stop(&self.server); /* a flag and the waker: nothing else crosses */
        evq_thread_join(&thread);
        echo_server_free(&self.server); /* after the join: no stop can be under way */
        print_server(&self.server);
        uint64_t expected = (uint64_t)connections * messages * size;
        if (self.run_code != 0 || (status == 0 && (self.server.bytes_echoed != expected ||
                                                   self.server.accepted != connections))) {
            printf("server: expected %u connections and %llu bytes echoed\n", connections,
                   (unsigned long long)expected);
            status = 1;
        }
    }
    evq_cond_destroy(&self.ready);
    evq_mutex_destroy(&self.lock);
    return status;
}

static int usage(FILE *to, const char *program, int status)
{
    fprintf(to,
            "Usage: %s --server [--port P] [--seconds N]\n"
            "       %s --client --port P [--connections C] [--messages M] [--size B]\n"
            "       %s --self [--connections C] [--messages M] [--size B]\n"
            "\n"
            "An echo server on io_uring (multishot accept, multishot receive on a\n"
            "provided-buffer ring) and its client; --self runs both in one process.\n"
            "Defaults: --connections 20 --messages 100 --size 64. Exit status 77:\n"
            "io_uring is unavailable here.\n",
            program, program, program);
    return status;
}

int main(int argc, char **argv)
{
    enum { NONE, SERVER, CLIENT, SELF } mode = NONE;
    unsigned long port = 0, seconds = 0, connections = 20, messages = 100, size = 64;
    for (int i = 1; i < argc; i++) {
        const char *option = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(option, "--help") == 0)
            return usage(stdout, argv[0], 0);
        else if (strcmp(option, "--server") == 0)
            mode = SERVER;
        else if (strcmp(option, "--client") == 0)
            mode = CLIENT;
        else if (strcmp(option, "--self") == 0)
            mode = SELF;
        else if (strcmp(option, "--port") == 0)
            ok = value && evq_parse_ulong(value, 0, 65535, &port) && ++i;
        else if (strcmp(option, "--seconds") == 0)
            ok = value && evq_parse_ulong(value, 0, 86400, &seconds) && ++i;
        else if (strcmp(option, "--connections") == 0)
            ok = value && evq_parse_ulong(value, 1, ECHO_MAX_CONNECTIONS, &connections) && ++i;
        else if (strcmp(option, "--messages") == 0)
            ok = value && evq_parse_ulong(value, 1, 1000000, &messages) && ++i;
        else if (strcmp(option, "--size") == 0)
            ok = value && evq_parse_ulong(value, 1, 1 << 20, &size) && ++i;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "%s: bad or unknown option '%s'\n", argv[0], option);
            return usage(stderr, argv[0], 2);
        }
    }
    if (mode == SERVER)
        return run_server((uint16_t)port, (unsigned)seconds);
    if (mode == SELF)
        return run_self((unsigned)connections, (unsigned)messages, size);
    if (mode == CLIENT && port != 0) {
        char reason[256] = "";
        int code = client_run((uint16_t)port, (unsigned)connections, (unsigned)messages, size,
                              reason, sizeof reason);
        if (code != 0)
            printf("%s\n", reason[0] ? reason : evq_strerror(code));
        return code == 0 ? 0 : unavailable(code) ? EXIT_UNAVAILABLE : 1;
    }
    return usage(stderr, argv[0], 2);
}
