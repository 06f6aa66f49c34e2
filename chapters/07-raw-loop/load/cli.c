/* cli.c - evq_load's command line: options, the report, the verdict, the
 * exit status (load.h). */
#include "load.h"

#include "evq.h"

#include "evq_args.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

void load_options_init(load_options *o)
{
    *o = (load_options){.host = "127.0.0.1",
                        .connections = 10,
                        .size = 64,
                        .depth = 1,
                        .seconds = 3,
                        .warmup = 0.5,
                        .timeout = 10};
}

static int usage(FILE *to, const char *program)
{
    fprintf(to,
            "Usage: %s --port P [--host H] [--connections C] [--size BYTES] [--depth D]\n"
            "       (--seconds S [--warmup S] | --round-trips N) [--http PATH] [--timeout S]\n"
            "\n"
            "Echo ping-pong (or keep-alive HTTP GETs) against H:P; every byte is checked.\n"
            "\n"
            "  --host H         the server (default 127.0.0.1)\n"
            "  --connections C  connections (default 10)\n"
            "  --size BYTES     bytes per echo message (default 64)\n"
            "  --depth D        messages in flight per connection: pipelining (default 1)\n"
            "  --seconds S      measured time (default 3)\n"
            "  --warmup S       time before measuring, with --seconds (default 0.5; 0: none)\n"
            "  --round-trips N  instead of a time: N messages per connection, all measured\n"
            "  --http PATH      HTTP: GET PATH on keep-alive connections, answers counted\n"
            "                   by status\n"
            "  --timeout S      a message unanswered for S seconds is lost (default 10)\n"
            "\n"
            "Exit status: 0 when every message was answered and checked; 1 on a mismatch,\n"
            "a lost answer, a status other than 200, a failed connection or an interrupted\n"
            "run; 2 on bad arguments.\n",
            program);
    return 0;
}

static int bad(char *why, size_t why_len, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_len, format, args);
    va_end(args);
    return 2;
}

int load_parse_args(int argc, char **argv, load_options *o, char *why, size_t why_len)
{
    load_options_init(o);
    bool have_port = false, have_seconds = false, have_warmup = false;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *name = argv[i];
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
            return 1;
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value)
            return bad(why, why_len, "%s: a value is missing (or an unknown option)", name);
        unsigned long number = 0;
        bool ok;
        if (strcmp(name, "--port") == 0) {
            ok = evq_parse_ulong(value, 1, 65535, &number);
            o->port = (uint16_t)number;
            have_port = true;
        } else if (strcmp(name, "--host") == 0) {
            ok = value[0] != '\0' && strlen(value) < 256;
            o->host = value;
        } else if (strcmp(name, "--connections") == 0) {
            ok = evq_parse_ulong(value, 1, 100000, &o->connections);
        } else if (strcmp(name, "--size") == 0) {
            ok = evq_parse_ulong(value, 1, LOAD_MAX_IN_FLIGHT_BYTES, &o->size);
        } else if (strcmp(name, "--depth") == 0) {
            ok = evq_parse_ulong(value, 1, 4096, &o->depth);
        } else if (strcmp(name, "--round-trips") == 0) {
            ok = evq_parse_ulong(value, 1, UINT32_MAX, &o->round_trips);
        } else if (strcmp(name, "--seconds") == 0) {
            ok = evq_parse_double(value, 0, 86400, &o->seconds);
            have_seconds = true;
        } else if (strcmp(name, "--warmup") == 0) {
            /* 0 is allowed here: no warm-up */
            ok = strcmp(value, "0") == 0 ? (o->warmup = 0, true)
                                         : evq_parse_double(value, 0, 3600, &o->warmup);
            have_warmup = true;
        } else if (strcmp(name, "--timeout") == 0) {
            ok = evq_parse_double(value, 0, 86400, &o->timeout);
        } else if (strcmp(name, "--http") == 0) {
            ok = value[0] == '/' && strlen(value) < 1024 && strpbrk(value, " \t\r\n") == NULL;
            o->http_path = value;
        } else {
            return bad(why, why_len, "unknown option %s", name);
        }
        if (!ok)
            return bad(why, why_len, "%s %s: not a valid value", name, value);
    }
    if (!have_port)
        return bad(why, why_len, "--port is required");
    if (o->round_trips != 0 && (have_seconds || have_warmup))
        return bad(why, why_len, "--round-trips and --seconds/--warmup exclude each other");
    if (o->round_trips != 0)
        o->seconds = 0, o->warmup = 0;
    if (!o->http_path && (uint64_t)o->size * o->depth > LOAD_MAX_IN_FLIGHT_BYTES)
        return bad(why, why_len, "--size times --depth is over %zu bytes",
                   LOAD_MAX_IN_FLIGHT_BYTES);
    return 0;
}

int load_exit_status(const load_result *r)
{
    bool clean = r->mismatches == 0 && r->lost == 0 && r->non_200 == 0 && r->errors == 0 &&
                 !r->interrupted && r->round_trips == r->sent;
    return clean ? 0 : 1;
}

void load_verdict(const load_options *o, const load_result *r, char *out, size_t out_len)
{
    const char *what = o->http_path ? "requests" : "round trips";
    if (load_exit_status(r) == 0) {
        snprintf(out, out_len, "verdict: OK - %" PRIu64 " %s, %s", r->round_trips, what,
                 o->http_path ? "every answer 200" : "every echo checked");
        return;
    }
    snprintf(out, out_len,
             "verdict: FAIL - %s (mismatches %" PRIu64 ", lost %" PRIu64 ", non-200 %" PRIu64
             ", failed connections %" PRIu64 "; %" PRIu64 " of %" PRIu64 " %s answered)",
             r->failure[0]    ? r->failure
             : r->interrupted ? "interrupted"
                              : "unanswered messages",
             r->mismatches, r->lost, r->non_200, r->errors, r->round_trips, r->sent, what);
}

void load_report(FILE *out, const load_options *o, const load_result *r)
{
    if (o->http_path)
        fprintf(out, "evq_load (%s): HTTP GET %s from %s:%u, %lu connections, depth %lu\n",
                evq_backend(), o->http_path, o->host, o->port, o->connections, o->depth);
    else
        fprintf(out,
                "evq_load (%s): echo to %s:%u, %lu connections, %lu-byte messages, depth %lu\n",
                evq_backend(), o->host, o->port, o->connections, o->size, o->depth);
    double rate = r->seconds > 0 ? (double)r->measured / r->seconds : 0;
    fprintf(out, "  %-12s %" PRIu64 " in %.3f s: %.0f per second (%" PRIu64 " in all)\n",
            o->http_path ? "requests" : "round trips", r->measured, r->seconds, rate,
            r->round_trips);
    fprintf(out,
            "  latency      p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
            (double)r->p50_ns / 1e3, (double)r->p90_ns / 1e3, (double)r->p99_ns / 1e3,
            (double)r->p999_ns / 1e3, (double)r->max_ns / 1e3);
    if (o->http_path) {
        fprintf(out, "  statuses    ");
        for (size_t i = 0; i < r->status_kinds; i++)
            fprintf(out, "%s %d: %" PRIu64, i ? "," : "", r->statuses[i].status,
                    r->statuses[i].count);
        fprintf(out, "%s (%" PRIu64 " bytes parsed)\n", r->status_kinds ? "" : " none",
                r->bytes_checked);
    } else {
        fprintf(out, "  checked      %" PRIu64 " bytes echoed, byte for byte\n", r->bytes_checked);
    }
    char verdict[512];
    load_verdict(o, r, verdict, sizeof verdict);
    fprintf(out, "%s\n", verdict);
}

int load_main(int argc, char **argv, FILE *out, FILE *err, atomic_bool *stop, load_result *result)
{
    load_options options;
    char why[256] = "";
    int rc = load_parse_args(argc, argv, &options, why, sizeof why);
    if (rc == 1)
        return usage(out, argc > 0 ? argv[0] : "evq_load");
    if (rc != 0) {
        fprintf(err, "evq_load: %s (--help lists the options)\n", why);
        return 2;
    }
    load_result local;
    if (!result)
        result = &local;
    rc = load_run(&options, stop, result);
    if (rc != 0) {
        fprintf(err, "evq_load: %s\n", evq_strerror(rc));
        return 1;
    }
    load_report(out, &options, result);
    fflush(out);
    return load_exit_status(result);
}
