// The recording floor in C, for the PostgreSQL benchmark: the same work as recording-floor.ts,
// done natively, so the table shows what a hot path outside JavaScript could reach. Per query it
// frames both directions, writes a hash-chained `command` record before forwarding the command
// (every record of one event-loop turn in one write(2), then the held messages are sent), and a
// `result` record with the response's tags, row count, columns, first row and SHA-256. Like the
// JavaScript floor it has no login of its own, no policy, no statement tracking and no masking:
// a yardstick, never a gateway. Plain TCP on 127.0.0.1 only; no TLS, SSLRequest or GSSENCRequest.
// Build: cc -O2 -o native-floor native-floor.c -lcrypto
// Usage: native-floor <server port> <log file>   (prints the port it listens on; SIGTERM flushes)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct { char *p; size_t len, cap; } buf_t;

static void buf_add(buf_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 256;
    b->p = realloc(b->p, b->cap);
    if (!b->p) exit(2);
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void buf_adds(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }
static void buf_consume(buf_t *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

/** A command forwarded and not yet answered: what its result record needs. */
typedef struct pending {
  char id[32];
  struct timespec started;
  EVP_MD_CTX *sha;
  long bytes, rows;
  buf_t tags, columns, sample;
  struct pending *next;
} pending_t;

#define MAX_STATEMENTS 16
typedef struct conn {
  int cfd, ufd, started, session, held_listed;
  long commands;
  buf_t client_carry, server_carry, held;
  pending_t *head, *tail;
  char statement_names[MAX_STATEMENTS][64];
  char *statement_texts[MAX_STATEMENTS];
  int statements;
  const char *portal_text;
  struct conn *next_held;
} conn_t;

typedef struct { conn_t *c; int upstream; } side_t;

static int log_fd;
static buf_t stage, record;
static long seq;
static char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
static int sessions;
static conn_t *held_list;
static volatile sig_atomic_t stopping;

static const char *now_iso(void) {
  static char iso[32];
  static long iso_ms = -1;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long ms = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (ms != iso_ms) {
    iso_ms = ms;
    struct tm tm;
    time_t s = ts.tv_sec;
    gmtime_r(&s, &tm);
    size_t n = strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(iso + n, sizeof iso - n, ".%03ldZ", ts.tv_nsec / 1000000);
  }
  return iso;
}

/** A JSON string as JSON.stringify writes it for the ASCII and UTF-8 text pgbench sends. */
static void json_string(buf_t *b, const char *s, size_t n) {
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      buf_add(b, e, 2);
    } else if (ch < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", ch);
      buf_add(b, e, 6);
    } else {
      buf_add(b, &ch, 1);
    }
  }
  buf_add(b, "\"", 1);
}

static void to_hex(const unsigned char *d, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[64] = 0;
}

/** Stages `body` (canonical JSON without `hash`) with its hash member last, as the gateway does. */
static void append(const buf_t *body) {
  unsigned char d[32];
  unsigned int dl;
  char h[65];
  EVP_Digest(body->p, body->len, d, &dl, EVP_sha256(), NULL);
  to_hex(d, h);
  buf_add(&stage, body->p, body->len - 1);
  buf_adds(&stage, ",\"hash\":\"");
  buf_add(&stage, h, 64);
  buf_adds(&stage, "\"}\n");
  memcpy(prev, h, 65);
  seq++;
}

static void flush_log(void) {
  size_t off = 0;
  while (off < stage.len) {
    ssize_t n = write(log_fd, stage.p + off, stage.len - off);
    if (n <= 0) {
      perror("native-floor: log write");
      exit(3);
    }
    off += (size_t)n;
  }
  stage.len = 0;
}

/** Loopback writes of a few hundred bytes complete at once; a full buffer is waited out. */
static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        usleep(50);
        continue;
      }
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void command(conn_t *c, const char *text, size_t n) {
  pending_t *p = calloc(1, sizeof *p);
  char num[128];
  snprintf(p->id, sizeof p->id, "s%d.%ld", c->session, ++c->commands);
  clock_gettime(CLOCK_MONOTONIC, &p->started);
  p->sha = EVP_MD_CTX_new();
  EVP_DigestInit_ex(p->sha, EVP_sha256(), NULL);
  record.len = 0;
  buf_adds(&record, "{\"command\":\"");
  buf_adds(&record, p->id);
  buf_adds(&record, "\",\"kind\":\"pg.query\",\"prev\":\"");
  buf_adds(&record, prev);
  snprintf(num, sizeof num, "\",\"seq\":%ld,\"session\":\"s%d\",\"text\":", seq, c->session);
  buf_adds(&record, num);
  json_string(&record, text, n);
  buf_adds(&record, ",\"time\":\"");
  buf_adds(&record, now_iso());
  buf_adds(&record, "\",\"type\":\"command\"}");
  append(&record);
  if (c->tail) c->tail->next = p;
  else c->head = p;
  c->tail = p;
}

static void result(conn_t *c, pending_t *p, char transaction) {
  unsigned char d[32];
  unsigned int dl;
  char h[65], num[160];
  struct timespec t;
  EVP_DigestFinal_ex(p->sha, d, &dl);
  EVP_MD_CTX_free(p->sha);
  to_hex(d, h);
  clock_gettime(CLOCK_MONOTONIC, &t);
  long us = (t.tv_sec - p->started.tv_sec) * 1000000 + (t.tv_nsec - p->started.tv_nsec) / 1000;
  record.len = 0;
  buf_adds(&record, "{\"command\":\"");
  buf_adds(&record, p->id);
  snprintf(num, sizeof num, "\",\"count\":%ld,\"details\":{\"tags\":[", p->rows);
  buf_adds(&record, num);
  buf_add(&record, p->tags.p, p->tags.len);
  snprintf(num, sizeof num, "],\"transaction\":\"%c\"},\"duration_us\":%ld,\"prev\":\"", transaction, us);
  buf_adds(&record, num);
  buf_adds(&record, prev);
  snprintf(num, sizeof num, "\",\"response\":{\"bytes\":%ld", p->bytes);
  buf_adds(&record, num);
  if (p->columns.len) {
    buf_adds(&record, ",\"columns\":[");
    buf_add(&record, p->columns.p, p->columns.len);
    buf_adds(&record, "]");
  }
  if (p->sample.len) {
    buf_adds(&record, ",\"sample\":[[");
    buf_add(&record, p->sample.p, p->sample.len);
    buf_adds(&record, "]]");
  }
  buf_adds(&record, ",\"sha256\":\"");
  buf_add(&record, h, 64);
  snprintf(num, sizeof num, "\"},\"seq\":%ld,\"session\":\"s%d\",\"status\":\"ok\",\"time\":\"", seq, c->session);
  buf_adds(&record, num);
  buf_adds(&record, now_iso());
  buf_adds(&record, "\",\"type\":\"result\"}");
  append(&record);
  free(p->tags.p);
  free(p->columns.p);
  free(p->sample.p);
  free(p);
}

/** Client bytes: a Query or Execute is recorded, and what carries it waits for the turn's write. */
static void on_client(conn_t *c, const unsigned char *d, size_t n) {
  buf_add(&c->client_carry, d, n);
  unsigned char *b = (unsigned char *)c->client_carry.p;
  size_t len = c->client_carry.len, at = 0;
  int recorded = 0;
  if (!c->started) {
    if (len < 4 || len < be32(b)) return;
    c->started = 1;
    at = be32(b);
  }
  while (at + 5 <= len) {
    size_t end = at + 1 + be32(b + at + 1);
    if (end > len) break;
    const char *body = (const char *)b + at + 5;
    switch (b[at]) {
      case 'Q':
        command(c, body, end - at - 6);
        recorded = 1;
        break;
      case 'P':
        if (c->statements < MAX_STATEMENTS) {
          snprintf(c->statement_names[c->statements], 64, "%s", body);
          c->statement_texts[c->statements++] = strdup(body + strlen(body) + 1);
        }
        break;
      case 'B': {
        const char *statement = body + strlen(body) + 1;
        for (int i = 0; i < c->statements; i++)
          if (!strcmp(c->statement_names[i], statement)) c->portal_text = c->statement_texts[i];
        break;
      }
      case 'E': {
        const char *text = c->portal_text ? c->portal_text : "";
        command(c, text, strlen(text));
        recorded = 1;
        break;
      }
    }
    at = end;
  }
  if (at == 0) return;
  if (recorded || c->held.len) {
    buf_add(&c->held, b, at);
    if (!c->held_listed) {
      c->held_listed = 1;
      c->next_held = held_list;
      held_list = c;
    }
  } else {
    write_all(c->ufd, (char *)b, at);
  }
  buf_consume(&c->client_carry, at);
}

/** Server bytes go to the client at once; the answer is followed for its result record. */
static void on_server(conn_t *c, const unsigned char *d, size_t n) {
  write_all(c->cfd, (const char *)d, n);
  buf_add(&c->server_carry, d, n);
  unsigned char *b = (unsigned char *)c->server_carry.p;
  size_t len = c->server_carry.len, at = 0;
  while (at + 5 <= len) {
    size_t end = at + 1 + be32(b + at + 1);
    if (end > len) break;
    pending_t *p = c->head;
    if (p) {
      EVP_DigestUpdate(p->sha, b + at, end - at);
      p->bytes += (long)(end - at);
      switch (b[at]) {
        case 'D':
          if (p->rows++ == 0) {
            int fields = b[at + 5] << 8 | b[at + 6];
            size_t v = at + 7;
            for (int i = 0; i < fields; i++) {
              int32_t l = (int32_t)be32(b + v);
              if (i) buf_adds(&p->sample, ",");
              if (l < 0) {
                buf_adds(&p->sample, "null");
                v += 4;
              } else {
                json_string(&p->sample, (char *)b + v + 4, (size_t)l);
                v += 4 + (size_t)l;
              }
            }
          }
          break;
        case 'T': {
          int fields = b[at + 5] << 8 | b[at + 6];
          size_t v = at + 7;
          p->columns.len = 0;
          for (int i = 0; i < fields; i++) {
            size_t nl = strlen((char *)b + v);
            if (i) buf_adds(&p->columns, ",");
            json_string(&p->columns, (char *)b + v, nl);
            v += nl + 1 + 18;
          }
          break;
        }
        case 'C':
          if (p->tags.len) buf_adds(&p->tags, ",");
          json_string(&p->tags, (char *)b + at + 5, strlen((char *)b + at + 5));
          break;
        case 'Z':
          c->head = p->next;
          if (!c->head) c->tail = NULL;
          result(c, p, (char)b[at + 5]);
          break;
      }
    }
    at = end;
  }
  buf_consume(&c->server_carry, at);
}

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: native-floor <server port> <log file>\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  int server_port = atoi(argv[1]);
  log_fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0600);
  if (log_fd < 0) {
    perror(argv[2]);
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 128) || getsockname(ls, (struct sockaddr *)&a, &al)) {
    perror("listen");
    return 2;
  }
  printf("%d", ntohs(a.sin_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
  static unsigned char rbuf[65536];
  struct epoll_event evs[64];
  struct timespec last;
  clock_gettime(CLOCK_MONOTONIC, &last);
  while (!stopping) {
    // Records nobody waits for (results) are written within 20 ms, as the gateway's lazy flush.
    int n = epoll_wait(ep, evs, 64, stage.len ? 20 : -1);
    for (int i = 0; i < n; i++) {
      side_t *s = evs[i].data.ptr;
      if (!s) {
        int cfd = accept(ls, NULL, NULL);
        if (cfd < 0) continue;
        int ufd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in u = {.sin_family = AF_INET, .sin_port = htons(server_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(ufd, (struct sockaddr *)&u, sizeof u) < 0) {
          close(cfd);
          close(ufd);
          continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(cfd, F_SETFL, O_NONBLOCK);
        fcntl(ufd, F_SETFL, O_NONBLOCK);
        conn_t *c = calloc(1, sizeof *c);
        c->cfd = cfd;
        c->ufd = ufd;
        c->session = ++sessions;
        side_t *sc = malloc(sizeof *sc), *su = malloc(sizeof *su);
        *sc = (side_t){c, 0};
        *su = (side_t){c, 1};
        struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = sc}, e2 = {.events = EPOLLIN, .data.ptr = su};
        epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &e1);
        epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &e2);
        continue;
      }
      conn_t *c = s->c;
      if (c->cfd < 0) continue;
      ssize_t r = read(s->upstream ? c->ufd : c->cfd, rbuf, sizeof rbuf);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        // Connections are few in a benchmark: a closed one is not freed.
        close(c->cfd);
        close(c->ufd);
        c->cfd = c->ufd = -1;
        continue;
      }
      if (s->upstream) on_server(c, rbuf, (size_t)r);
      else on_client(c, rbuf, (size_t)r);
    }
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long since = (t.tv_sec - last.tv_sec) * 1000 + (t.tv_nsec - last.tv_nsec) / 1000000;
    if (held_list || (stage.len && since >= 20)) {
      flush_log();
      last = t;
    }
    // Recorded before forwarded: the held messages go only now that their records are written.
    for (conn_t *c = held_list; c;) {
      conn_t *next = c->next_held;
      if (c->ufd >= 0) write_all(c->ufd, c->held.p, c->held.len);
      c->held.len = 0;
      c->held_listed = 0;
      c = next;
    }
    held_list = NULL;
  }
  flush_log();
  close(log_fd);
  return 0;
}
