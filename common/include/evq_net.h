/* evq_net.h - socket portability that no chapter teaches: the socket type,
 * one-time Winsock start-up, close, non-blocking mode, the last error as an
 * EVQ_E* code, and small blocking helpers for tests, demos and the delay
 * server (listen on loopback, connect, send all, receive until EOF).
 *
 * Names here start with evq_net_ / evq_socket_ so they never collide with a
 * chapter's own evq_tcp_* API.
 */
#ifndef EVQ_NET_H
#define EVQ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET evq_socket;
#define EVQ_INVALID_SOCKET INVALID_SOCKET
#else
#include <sys/socket.h>
#include <netinet/in.h>
typedef int evq_socket;
#define EVQ_INVALID_SOCKET (-1)
#endif

/* Flags for send(): MSG_NOSIGNAL where it exists, so that writing to a peer
 * that has gone away returns EPIPE instead of killing the process with
 * SIGPIPE. (macOS has no MSG_NOSIGNAL: use evq_socket_set_nosigpipe.) */
#if defined(MSG_NOSIGNAL)
#define EVQ_SEND_FLAGS MSG_NOSIGNAL
#else
#define EVQ_SEND_FLAGS 0
#endif

/* Start Winsock once per process (WSAStartup); a no-op on POSIX. Safe to call
 * from any thread, any number of times. */
int evq_net_init(void);

/* Hundreds of connections need more descriptors than the soft limit of 1024
 * that many systems start with: raise the soft limit to the hard one, if
 * that is more (POSIX; best effort). A no-op on Windows. */
void evq_net_raise_descriptor_limit(void);

/* The last socket error of this thread (errno or WSAGetLastError) as EVQ_E*. */
int evq_socket_last_error(void);

/* The raw OS value behind the last socket error (errno or WSAGetLastError),
 * for log messages. */
int evq_socket_last_os_error(void);

/* Close a socket. Never retried on EINTR: on Linux the descriptor is already
 * gone when close() reports EINTR, and a retry could close a descriptor that
 * another thread has just been given. */
int evq_socket_close(evq_socket socket);

int evq_socket_set_nonblocking(evq_socket socket, bool nonblocking);

/* SO_NOSIGPIPE on systems that have it (macOS, BSD); a no-op elsewhere. */
int evq_socket_set_nosigpipe(evq_socket socket);

/* TCP_NODELAY on or off. */
int evq_socket_set_nodelay(evq_socket socket, bool nodelay);

/* The pending error on a socket (SO_ERROR) as EVQ_E*; 0 when there is none. */
int evq_socket_pending_error(evq_socket socket);

/* Close with an RST instead of a FIN (SO_LINGER with a zero timeout): used by
 * tests that need a peer which resets. Under Wine 8 this does not reset: the
 * peer sees EOF (Wine ends the connection with a FIN). */
int evq_socket_close_with_reset(evq_socket socket);

/* Blocking helpers. */

/* Listen on 127.0.0.1:port (0 picks a free port) with SO_REUSEADDR on POSIX;
 * the chosen port is written to *port_out. */
int evq_net_listen_loopback(uint16_t port, int backlog, evq_socket *out, uint16_t *port_out);

/* A blocking TCP connection to 127.0.0.1:port. */
int evq_net_connect_loopback(uint16_t port, evq_socket *out);

/* A loopback port that refuses connections for as long as *holder stays
 * open (a socket bound to it that never listens); close *holder after. */
int evq_net_refusing_loopback(evq_socket *holder, uint16_t *port_out);

/* accept() one connection, blocking. */
int evq_net_accept(evq_socket listener, evq_socket *out);

/* The local port a socket is bound to. */
int evq_net_local_port(evq_socket socket, uint16_t *port_out);

/* send() until all len bytes are gone; retries EINTR. */
int evq_net_send_all(evq_socket socket, const void *data, size_t len);

/* One recv(): *received is 0 at EOF. Retries EINTR. */
int evq_net_recv(evq_socket socket, void *buffer, size_t capacity, size_t *received);

/* recv() until EOF or until capacity bytes; *received is the total. */
int evq_net_recv_until_eof(evq_socket socket, void *buffer, size_t capacity, size_t *received);

/* A receive timeout (SO_RCVTIMEO) in milliseconds; 0 means none. */
int evq_socket_set_recv_timeout(evq_socket socket, uint32_t timeout_ms);

/* A connection whose server side resets: connect to a fresh listener, let
 * the client send `data` (may be NULL), and close the listener without
 * accepting. Linux, macOS and Windows reset connections left in a closed
 * listener's backlog, so the client's next receive fails with
 * EVQ_ECONNRESET. Under Wine 8 the outcome varies from run to run (measured:
 * EOF 20 times out of 20 without data, a reset 14 times out of 20 with data),
 * so tests built for Wine cannot rely on a reset. *client is blocking. */
int evq_net_abandon_backlog(const void *data, size_t len, evq_socket *client);

/* A connected pair of loopback TCP sockets (socketpair() does not exist for
 * TCP on Windows, and the chapters' streams are TCP). Both are blocking. */
int evq_net_tcp_pair(evq_socket *a, evq_socket *b);

#endif
