/* evq_log.h - a leveled logger to stderr.
 *
 * Each line: seconds since the process started logging (monotonic), the
 * level, the thread's name, the source location and the message:
 *
 *     0.012345 INFO  [loop] demo.c:42: connected to 127.0.0.1:8080
 *
 * The level comes from the environment variable EVQ_LOG (error, warn, info,
 * debug, trace; default warn), read once on first use, or from
 * evq_log_set_level(). Lines from different threads never interleave.
 */
#ifndef EVQ_LOG_H
#define EVQ_LOG_H

enum evq_log_level {
    EVQ_LOG_ERROR = 0,
    EVQ_LOG_WARN = 1,
    EVQ_LOG_INFO = 2,
    EVQ_LOG_DEBUG = 3,
    EVQ_LOG_TRACE = 4,
};

/* printf-style format checking. On mingw-w64 the build uses its C99 printf
 * (__USE_MINGW_ANSI_STDIO, so %zu and %llu work), which gcc checks as gnu_printf. */
#if defined(__MINGW32__)
#define EVQ_PRINTF_LIKE(fmt_index, args_index)                                                     \
    __attribute__((format(gnu_printf, fmt_index, args_index)))
#elif defined(__GNUC__) || defined(__clang__)
#define EVQ_PRINTF_LIKE(fmt_index, args_index)                                                     \
    __attribute__((format(printf, fmt_index, args_index)))
#else
#define EVQ_PRINTF_LIKE(fmt_index, args_index)
#endif

/* Name the calling thread in log lines ("main" by default; at most 15 chars kept). */
void evq_log_set_thread_name(const char *name);
const char *evq_log_thread_name(void);

void evq_log_set_level(enum evq_log_level level);
enum evq_log_level evq_log_get_level(void);
int evq_log_enabled(enum evq_log_level level);

/* Parse "error".."trace" or "0".."4"; returns -1 for anything else. */
int evq_log_parse_level(const char *text);

void evq_log_write(enum evq_log_level level, const char *file, int line, const char *format, ...)
    EVQ_PRINTF_LIKE(4, 5);

#define EVQ_LOG_AT(level, ...)                                                                     \
    do {                                                                                           \
        if (evq_log_enabled(level))                                                                \
            evq_log_write(level, __FILE__, __LINE__, __VA_ARGS__);                                 \
    } while (0)

#define EVQ_ERROR(...) EVQ_LOG_AT(EVQ_LOG_ERROR, __VA_ARGS__)
#define EVQ_WARN(...)  EVQ_LOG_AT(EVQ_LOG_WARN, __VA_ARGS__)
#define EVQ_INFO(...)  EVQ_LOG_AT(EVQ_LOG_INFO, __VA_ARGS__)
#define EVQ_DEBUG(...) EVQ_LOG_AT(EVQ_LOG_DEBUG, __VA_ARGS__)
#define EVQ_TRACE(...) EVQ_LOG_AT(EVQ_LOG_TRACE, __VA_ARGS__)

#endif
