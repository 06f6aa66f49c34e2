/* log.c - leveled logging to stderr with a timestamp and the thread's name. */
#include "evq_log.h"
#include "evq_clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREAD_NAME_MAX 16
#define LINE_MAX_BYTES  1024

static atomic_int current_level = -1; /* -1: not read from the environment yet */
static atomic_uint_fast64_t start_ns; /* 0: not started yet */
static _Thread_local char thread_name[THREAD_NAME_MAX];

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int evq_log_parse_level(const char *text)
{
    static const char *const lower[] = {"error", "warn", "info", "debug", "trace"};
    if (!text)
        return -1;
    for (int i = 0; i < 5; i++) {
        if (strcmp(text, lower[i]) == 0 || strcmp(text, level_names[i]) == 0)
            return i;
    }
    if (text[0] >= '0' && text[0] <= '4' && text[1] == '\0')
        return text[0] - '0';
    return -1;
}

enum evq_log_level evq_log_get_level(void)
{
    int level = atomic_load_explicit(&current_level, memory_order_relaxed);
    if (level < 0) {
        /* Two threads may both read the environment; they store the same value. */
        level = evq_log_parse_level(getenv("EVQ_LOG"));
        if (level < 0)
            level = EVQ_LOG_WARN;
        atomic_store_explicit(&current_level, level, memory_order_relaxed);
    }
    return (enum evq_log_level)level;
}

void evq_log_set_level(enum evq_log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

int evq_log_enabled(enum evq_log_level level)
{
    return (int)level <= (int)evq_log_get_level();
}

void evq_log_set_thread_name(const char *name)
{
    size_t n = strlen(name);
    if (n >= THREAD_NAME_MAX)
        n = THREAD_NAME_MAX - 1;
    memcpy(thread_name, name, n);
    thread_name[n] = '\0';
}

const char *evq_log_thread_name(void)
{
    return thread_name[0] ? thread_name : "main";
}

static const char *base_name(const char *path)
{
    const char *base = path;
    for (const char *p = path; *p; p++) {
        if (*p == '/' || *p == '\\')
            base = p + 1;
    }
    return base;
}

void evq_log_write(enum evq_log_level level, const char *file, int line, const char *format, ...)
{
    uint64_t now = evq_clock_now_ns();
    uint_fast64_t expected = 0;
    /* The first line ever written sets the origin; the others read it. */
    atomic_compare_exchange_strong(&start_ns, &expected, now);
    uint64_t since = evq_elapsed_ns(now, expected ? expected : now);

    char buffer[LINE_MAX_BYTES];
    int used = snprintf(buffer, sizeof buffer,
                        "%llu.%06llu %-5s [%s] %s:%d: ", (unsigned long long)(since / EVQ_NS_PER_S),
                        (unsigned long long)(since % EVQ_NS_PER_S / 1000),
                        level_names[level < 0 || level > 4 ? 0 : level], evq_log_thread_name(),
                        base_name(file), line);
    if (used < 0)
        return;
    size_t length = (size_t)used < sizeof buffer ? (size_t)used : sizeof buffer - 1;

    va_list args;
    va_start(args, format);
    int body = vsnprintf(buffer + length, sizeof buffer - length, format, args);
    va_end(args);
    if (body > 0)
        length += (size_t)body < sizeof buffer - length ? (size_t)body : sizeof buffer - length - 1;
    if (length >= sizeof buffer - 1) {
        /* Truncated: mark it, and keep room for the newline. */
        memcpy(buffer + sizeof buffer - 5, "...", 3);
        length = sizeof buffer - 2;
    }
    buffer[length++] = '\n';
    /* One fwrite per line: stdio locks the stream per call, so lines from
     * different threads never interleave. */
    fwrite(buffer, 1, length, stderr);
}
