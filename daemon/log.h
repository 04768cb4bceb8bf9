/* log.h - umpathd logs to stderr, one line per event, with a timestamp. */
#ifndef UMPATH_LOG_H
#define UMPATH_LOG_H

void um_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
