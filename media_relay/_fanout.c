/* The relay's packet path, compiled. A publisher's datagram is read with its socket's other
 * waiting datagrams (`read_datagrams`), SRTP-unprotected and parsed by its connection's `Ingest`,
 * counted and checked for loss by its source's `Stream`, and fanned out to the subscribers' slots
 * (`forward_packet`, below; see media_relay/rtp_fanout.py), with Python called only for events.
 *
 * The fan-out:
 *
 * One publisher RTP packet goes to every subscriber slot of that source: for each slot the RTP
 * header is written from the slot's template (its SSRC, payload type, sequence number and timestamp
 * offsets, header extensions), the publisher's payload copied after it, SRTP applied in place with
 * the subscriber's libsrtp session and the datagram sent on the subscriber's socket. No Python
 * object is created per slot; the history for NACKs holds a reference to the publisher's payload.
 * The loop also reads the VP8 payload descriptor (a keyframe's first packet?) and the clocks
 * (abs-send-time, the sender-report NTP time), which cost more per packet in Python.
 * Python keeps every decision that is not per packet (which slot carries what, when to ask for a
 * keyframe, RTX retransmissions, RTCP).
 *
 * Video datagrams pass a process-wide pacer (a token bucket in bytes a second): one relay process
 * serves many lessons on one event loop, and a keyframe storm would otherwise push thousands of
 * datagrams at once ahead of every other lesson's audio, in this loop and in the kernel's queue.
 * Past the budget a slot's datagram (header written, not yet protected) waits in a bounded FIFO
 * that `drain()` empties a chunk per loop turn; audio never waits. Once anything waits, all video
 * waits behind it, so each slot's datagrams leave in their order and SRTP sees them in order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HISTORY 128
#define MAX_HEADER 64
/* Room for the SRTP trailer (at most 16 bytes of tag and MKI) after the largest packet. */
#define BUFFER_SIZE 2048
#define TRAILER 32
#define PACER_CAPACITY 16384
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

/* libsrtp 2: srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr). */
typedef int (*protect_fn)(void *ctx, void *rtp, int *len);

typedef struct {
    PyObject *payload; /* the publisher's payload; NULL when this entry is empty */
    uint32_t timestamp;
    uint16_t sequence;
    uint8_t marker;
    uint8_t audio_level;
    uint8_t abs_send_time[3];
} Entry;

typedef struct {
    PyObject_HEAD
    int video;
    uint8_t template[MAX_HEADER];
    int header_size; /* 0 until configured */
    int payload_type;
    int abs_send_time_at; /* 0: not negotiated */
    int audio_level_at;
    /* Timeline */
    int carrying;
    int rebase;
    int awaiting_keyframe;
    int first_frame; /* of the current source: -1 none yet, 0 delta, 1 keyframe */
    uint16_t seq_offset;
    uint16_t base_seq;
    uint16_t last_seq;
    uint32_t ts_offset;
    uint32_t last_ts;
    int has_last_ts;
    uint32_t origin; /* where a first timeline starts (random) */
    double last_sent;
    /* Output: a socket, or a Python callable given the unprotected packet */
    PyObject *session; /* keeps the libsrtp session alive while its pointer is used */
    void *srtp;
    protect_fn protect;
    int fd;
    struct sockaddr_storage address;
    socklen_t address_size;
    PyObject *send;
    /* Counters */
    unsigned long long packets;
    unsigned long long octets;
    unsigned long long frames_sent;
    unsigned long long frames_dropped;
    unsigned long long send_errors;
    uint32_t report_timestamp;
    unsigned long long report_ntp;
    Py_ssize_t queued; /* datagrams of this slot waiting in the pacer */
    int staged_head, staged_tail; /* its datagrams held in `stage` (indices), -1 when none */
    Entry history[HISTORY];
} Slot;

/* A video datagram waiting in the pacer: the slot's header and the publisher's payload (both
 * referenced, so neither can go while it waits); protected and sent when it leaves. */
typedef struct {
    Slot *slot;
    PyObject *payload;
    uint16_t sequence;
    uint8_t header_size;
    uint8_t header[MAX_HEADER];
} Queued;

static struct {
    Queued *ring;
    Py_ssize_t capacity, head, count;
    double rate; /* bytes a second; 0: no pacing */
    double burst; /* the bucket's depth in bytes */
    double tokens; /* may go below zero by one datagram */
    double refilled_at;
    unsigned long long queued, overflow_dropped, stopped_dropped;
} pacer;

/* Sending a read batch's video a subscriber at a time, by UDP GSO.
 *
 * The kernel's cost of a datagram is most of the relay's (bench/fanout_floor.c); one `sendmsg`
 * with UDP_SEGMENT carries several datagrams to one address for much less than a `sendto` each
 * (`python bench/run.py udp-send-floor`: ~7 us a datagram alone, ~5.5 in twos, ~3.5 in fours).
 * While a batch of publisher datagrams is read (`read_datagrams`) or a chunk of the pacer's queue
 * is sent (`drain`), a socket slot's video datagrams are SRTP-protected in order as before but held
 * here, and sent when the batch ends: each slot's in as few sends as GSO allows (every datagram of
 * a send but the last of one size, the last no larger). Most of a frame's packets then leave in
 * one send. Audio, one datagram a frame, never waits. A held datagram counts as sent, as one a
 * full socket buffer loses does; a slot whose socket changes sends what it holds first. */
#define STAGE_DATAGRAMS 1024
#define GSO_SEGMENTS 64 /* UDP_MAX_SEGMENTS of older kernels */
#define GSO_BYTES 60000 /* under a datagram's 64 KiB */
/* A kernel that refused this many GSO sends and took none is taken not to have it. */
#define GSO_TRIES 64

typedef struct {
    Slot *slot;
    int size; /* protected */
    int next; /* the slot's next held datagram, -1: its last */
} Staged;

static struct {
    int depth; /* batches under way (they nest: a callback may drain the pacer) */
    int count;
    Staged entries[STAGE_DATAGRAMS];
    uint8_t *cells; /* STAGE_DATAGRAMS x BUFFER_SIZE, one per held datagram */
    Slot *slots[STAGE_DATAGRAMS]; /* each holding slot once (a reference), in order; NULL: sent */
    int slot_count;
    int no_gso; /* the kernel refused UDP_SEGMENT every time: one datagram a send */
    int gso_off; /* use_gso(False): one datagram a send */
    unsigned long long datagrams, sends, gso_sends, gso_refused;
} stage;

static double monotonic(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void put16(uint8_t *at, uint16_t value) {
    at[0] = (uint8_t)(value >> 8);
    at[1] = (uint8_t)value;
}

static void put32(uint8_t *at, uint32_t value) {
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

static void send_staged(Slot *self);

static void disconnect(Slot *self) {
    send_staged(self); /* what it holds was protected with this session, for this socket */
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
    Py_CLEAR(self->session);
    Py_CLEAR(self->send);
    self->srtp = NULL;
    self->protect = NULL;
}

static void drop_queued(Slot *self);

static void clear_history(Slot *self) {
    for (int i = 0; i < HISTORY; i++) {
        Py_CLEAR(self->history[i].payload);
    }
}

static PyObject *Slot_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"video", NULL};
    int video = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "p", keywords, &video)) {
        return NULL;
    }
    Slot *self = (Slot *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL) {
        return NULL;
    }
    self->video = video;
    self->fd = -1;
    self->first_frame = -1;
    self->staged_head = self->staged_tail = -1;
    return (PyObject *)self;
}

static int Slot_traverse(Slot *self, visitproc visit, void *arg) {
    Py_VISIT(self->session);
    Py_VISIT(self->send);
    return 0;
}

static int Slot_clear(Slot *self) {
    disconnect(self);
    return 0;
}

static void Slot_dealloc(Slot *self) {
    PyObject_GC_UnTrack(self);
    disconnect(self);
    clear_history(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Slot_configure(Slot *self, PyObject *args) {
    Py_buffer template;
    int payload_type, abs_send_time_at, audio_level_at;
    if (!PyArg_ParseTuple(args, "y*iii", &template, &payload_type, &abs_send_time_at,
                          &audio_level_at)) {
        return NULL;
    }
    if (template.len < 12 || template.len > MAX_HEADER || abs_send_time_at < 0 ||
        audio_level_at < 0 || abs_send_time_at + 3 > template.len ||
        audio_level_at >= template.len) {
        PyBuffer_Release(&template);
        PyErr_SetString(PyExc_ValueError, "bad RTP header template");
        return NULL;
    }
    /* Waiting datagrams were written from the old template: they would be stamped at the new
     * offsets. A sender starts once; this only matters if that ever changes. */
    drop_queued(self);
    memcpy(self->template, template.buf, (size_t)template.len);
    self->header_size = (int)template.len;
    PyBuffer_Release(&template);
    self->payload_type = payload_type & 0x7f;
    self->abs_send_time_at = abs_send_time_at;
    self->audio_level_at = audio_level_at;
    Py_RETURN_NONE;
}

static PyObject *Slot_connect_socket(Slot *self, PyObject *args) {
    PyObject *session;
    unsigned long long srtp, protect;
    int fd, port;
    const char *host;
    if (!PyArg_ParseTuple(args, "OKKisi", &session, &srtp, &protect, &fd, &host, &port)) {
        return NULL;
    }
    struct sockaddr_storage address;
    memset(&address, 0, sizeof(address));
    socklen_t size;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&address;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        size = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        size = sizeof(*v6);
    } else {
        PyErr_Format(PyExc_ValueError, "not an IP address: %s", host);
        return NULL;
    }
    int own = dup(fd); /* ours to close: the fd number can never come to mean another socket */
    if (own < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    drop_queued(self);
    disconnect(self);
    self->fd = own;
    self->address = address;
    self->address_size = size;
    Py_INCREF(session);
    self->session = session;
    self->srtp = (void *)(uintptr_t)srtp;
    self->protect = (protect_fn)(uintptr_t)protect;
    Py_RETURN_NONE;
}

static PyObject *Slot_connect_callable(Slot *self, PyObject *send) {
    if (!PyCallable_Check(send)) {
        PyErr_SetString(PyExc_TypeError, "send must be callable");
        return NULL;
    }
    drop_queued(self);
    disconnect(self);
    Py_INCREF(send);
    self->send = send;
    Py_RETURN_NONE;
}

static PyObject *Slot_disconnect(Slot *self, PyObject *unused) {
    drop_queued(self);
    disconnect(self);
    Py_RETURN_NONE;
}

static PyObject *Slot_start_source(Slot *self, PyObject *args) {
    unsigned int origin;
    if (!PyArg_ParseTuple(args, "I", &origin)) {
        return NULL;
    }
    /* What still waits of the old source leaves first, in order: its numbers come before the new
     * source's (the new timeline continues from the last one given), so a subscriber switched to
     * another speaker or layer loses nothing. */
    self->carrying = 1;
    self->rebase = 1;
    self->awaiting_keyframe = self->video;
    self->first_frame = -1;
    self->origin = origin;
    Py_RETURN_NONE;
}

/* stop_source(drop_waiting=True). A source that must not be seen any more (its camera stopped,
 * a moderator's decision, the publisher gone) sends nothing more: what waits is dropped. A source
 * that merely left the subscriber's selection (another speaker took its place) lets what waits of
 * it leave: dropping it left a gap in the slot that no NACK could fill (0.1-0.3 % of
 * relay-gallery-single-layer's packets, at each change of speakers). */
static PyObject *Slot_stop_source(Slot *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"drop_waiting", NULL};
    int drop_waiting = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$p", keywords, &drop_waiting)) {
        return NULL;
    }
    if (drop_waiting) {
        drop_queued(self);
    }
    self->carrying = 0;
    Py_RETURN_NONE;
}

/* Write the slot's header for a packet into `out`; return its size. */
static int write_header(Slot *self, uint8_t *out, int marker, uint16_t sequence,
                        uint32_t timestamp, const uint8_t *abs_send_time, int audio_level) {
    memcpy(out, self->template, (size_t)self->header_size);
    out[1] = (uint8_t)((marker ? 0x80 : 0) | self->payload_type);
    put16(out + 2, sequence);
    put32(out + 4, timestamp);
    if (self->abs_send_time_at) {
        memcpy(out + self->abs_send_time_at, abs_send_time, 3);
    }
    if (self->audio_level_at && audio_level >= 0) {
        out[self->audio_level_at] = (uint8_t)audio_level;
    }
    return self->header_size;
}

static PyObject *Slot_sent_packet(Slot *self, PyObject *args) {
    unsigned int sequence;
    if (!PyArg_ParseTuple(args, "I", &sequence)) {
        return NULL;
    }
    Entry *entry = &self->history[sequence % HISTORY];
    if (entry->payload == NULL || entry->sequence != (uint16_t)sequence) {
        Py_RETURN_NONE;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(entry->payload);
    PyObject *packet = PyBytes_FromStringAndSize(NULL, self->header_size + size);
    if (packet == NULL) {
        return NULL;
    }
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(packet);
    int header = write_header(self, out, entry->marker, entry->sequence, entry->timestamp,
                              entry->abs_send_time, entry->audio_level);
    memcpy(out + header, PyBytes_AS_STRING(entry->payload), (size_t)size);
    return packet;
}

static PyObject *Slot_counters(Slot *self, PyObject *unused) {
    return Py_BuildValue("KKKKKIKi", self->packets, self->octets, self->frames_sent,
                         self->frames_dropped, self->send_errors, self->report_timestamp,
                         self->report_ntp, self->first_frame);
}

static PyObject *Slot_get_ready(Slot *self, void *closure) {
    return PyBool_FromLong(self->header_size != 0);
}

static PyObject *Slot_get_mode(Slot *self, void *closure) {
    if (self->send != NULL) {
        return PyUnicode_FromString("callable");
    }
    if (self->fd >= 0) {
        return PyUnicode_FromString("socket");
    }
    Py_RETURN_NONE;
}

static PyObject *Slot_get_last_seq(Slot *self, void *closure) {
    return PyLong_FromLong(self->last_seq);
}

static void start_timeline(Slot *self, uint16_t sequence, uint32_t timestamp, int keyframe) {
    self->rebase = 0;
    self->awaiting_keyframe = 0;
    self->base_seq = sequence;
    self->seq_offset = (uint16_t)(self->last_seq + 1 - sequence);
    uint32_t origin = self->origin;
    if (self->has_last_ts) {
        double rate = self->video ? 90000.0 : 48000.0;
        long long elapsed = (long long)((monotonic() - self->last_sent) * rate + 0.5);
        long long nominal = self->video ? 3000 : 960;
        origin = self->last_ts + (uint32_t)(elapsed > nominal ? elapsed : nominal);
    }
    self->ts_offset = origin - timestamp;
    if (self->first_frame < 0) {
        self->first_frame = self->video ? keyframe : 1;
    }
}

static void send_one(Slot *self, const uint8_t *datagram, int length) {
    stage.datagrams++;
    stage.sends++;
    if (sendto(self->fd, datagram, (size_t)length, 0, (struct sockaddr *)&self->address,
               self->address_size) < 0) {
        /* A full socket buffer loses the packet as a network would: the history can resend it. */
        self->send_errors++;
    }
}

static void send_all_staged(void);

static uint8_t *stage_cell(int index) { return stage.cells + (size_t)index * BUFFER_SIZE; }

/* Whether a socket slot's video datagram is held: inside a batch, with GSO on and room for it
 * (allocated at the first; without it, GSO is off and datagrams go one by one, as before). */
static int staging(Slot *self) {
    if (stage.depth == 0 || !self->video || stage.no_gso || stage.gso_off) {
        return 0;
    }
    if (stage.cells == NULL) {
        stage.cells = PyMem_RawMalloc((size_t)STAGE_DATAGRAMS * BUFFER_SIZE);
        stage.no_gso = stage.cells == NULL;
    }
    return !stage.no_gso;
}

/* Protect a socket slot's video datagram and hold it until the batch ends; as send_packet. */
static int stage_packet(Slot *self, const uint8_t *buffer, int size) {
    if (stage.count == STAGE_DATAGRAMS) {
        send_all_staged();
    }
    int index = stage.count;
    uint8_t *cell = stage_cell(index);
    memcpy(cell, buffer, (size_t)size);
    int length = size;
    if (self->protect(self->srtp, cell, &length) != 0) {
        self->send_errors++;
        return 0;
    }
    stage.count++;
    Staged *staged = &stage.entries[index];
    staged->slot = self;
    staged->size = length;
    staged->next = -1;
    if (self->staged_head < 0) {
        Py_INCREF(self);
        self->staged_head = index;
        stage.slots[stage.slot_count++] = self;
    } else {
        stage.entries[self->staged_tail].next = index;
    }
    self->staged_tail = index;
    return 1;
}

/* Send `count` held datagrams of one slot, all of `size` bytes but the last (no larger), in one
 * GSO send; one by one if the kernel refuses it. */
static void send_run(Slot *self, struct iovec *vectors, int count, int size) {
    if (count == 1 || stage.no_gso || stage.gso_off) {
        for (int i = 0; i < count; i++) {
            send_one(self, vectors[i].iov_base, (int)vectors[i].iov_len);
        }
        return;
    }
    union {
        char bytes[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {
        .msg_name = &self->address,
        .msg_namelen = self->address_size,
        .msg_iov = vectors,
        .msg_iovlen = (size_t)count,
        .msg_control = control.bytes,
        .msg_controllen = sizeof control.bytes,
    };
    struct cmsghdr *segment = CMSG_FIRSTHDR(&message);
    segment->cmsg_level = SOL_UDP;
    segment->cmsg_type = UDP_SEGMENT;
    segment->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso_size = (uint16_t)size;
    memcpy(CMSG_DATA(segment), &gso_size, sizeof gso_size);
    if (sendmsg(self->fd, &message, 0) >= 0) {
        stage.datagrams += (unsigned long long)count;
        stage.sends++;
        stage.gso_sends++;
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        /* A full socket buffer: lost as a network would lose them (see send_one). */
        stage.datagrams += (unsigned long long)count;
        stage.sends++;
        self->send_errors += (unsigned long long)count;
        return;
    }
    /* Refused: no UDP_SEGMENT in this kernel, a device without checksum offload, a segment over
     * the path's MTU. Each datagram still goes, on its own. */
    stage.gso_refused++;
    if (stage.gso_sends == 0 && stage.gso_refused >= GSO_TRIES) {
        stage.no_gso = 1;
    }
    for (int i = 0; i < count; i++) {
        send_one(self, vectors[i].iov_base, (int)vectors[i].iov_len);
    }
}

/* Send what a slot holds, in its order, in as few sends as GSO allows. Never calls Python; the
 * caller releases the stage's reference to the slot. */
static void send_held(Slot *self) {
    int index = self->staged_head;
    self->staged_head = self->staged_tail = -1;
    struct iovec vectors[GSO_SEGMENTS];
    while (index >= 0) {
        int size = stage.entries[index].size, count = 0, bytes = 0;
        while (index >= 0 && count < GSO_SEGMENTS) {
            int next_size = stage.entries[index].size;
            if (count > 0 && (next_size > size || bytes + next_size > GSO_BYTES)) {
                break;
            }
            vectors[count].iov_base = stage_cell(index);
            vectors[count].iov_len = (size_t)next_size;
            count++;
            bytes += next_size;
            index = stage.entries[index].next;
            if (next_size < size) {
                break; /* only the last of a send may be shorter */
            }
        }
        if (self->fd >= 0) {
            send_run(self, vectors, count, size);
        } else {
            self->send_errors += (unsigned long long)count;
        }
    }
}

/* One slot's held datagrams, sent now (its socket or session is about to change). */
static void send_staged(Slot *self) {
    if (self->staged_head < 0) {
        return;
    }
    for (int k = 0; k < stage.slot_count; k++) {
        if (stage.slots[k] == self) {
            stage.slots[k] = NULL;
            break;
        }
    }
    send_held(self);
    Py_DECREF(self); /* the stage's; the slot may go now (it holds nothing) */
}

static void send_all_staged(void) {
    Slot *sent[STAGE_DATAGRAMS];
    int count = 0;
    for (int k = 0; k < stage.slot_count; k++) {
        if (stage.slots[k] != NULL) {
            send_held(stage.slots[k]);
            sent[count++] = stage.slots[k];
        }
    }
    stage.slot_count = 0;
    stage.count = 0;
    /* Released once the stage is empty: a slot's going may run code that sends again. */
    for (int k = 0; k < count; k++) {
        Py_DECREF(sent[k]);
    }
}

static void stage_begin(void) { stage.depth++; }

static void stage_end(void) {
    if (--stage.depth == 0) {
        send_all_staged();
    }
}

/* Send one packet of `size` bytes in `buffer` (room for the SRTP trailer); 1 when it left, 0
 * when it did not, -1 with an exception set when the send callable raised. Every failure is
 * counted here, once: the callers count none. */
static int send_packet(Slot *self, uint8_t *buffer, int size) {
    if (self->send != NULL) {
        PyObject *packet = PyBytes_FromStringAndSize((const char *)buffer, size);
        if (packet == NULL) {
            self->send_errors++;
            return -1;
        }
        PyObject *send = Py_NewRef(self->send); /* the call may disconnect the slot */
        PyObject *result = PyObject_CallOneArg(send, packet);
        Py_DECREF(send);
        Py_DECREF(packet);
        if (result == NULL) {
            self->send_errors++;
            return -1;
        }
        int sent = PyObject_IsTrue(result);
        Py_DECREF(result);
        if (sent <= 0) { /* refused (a closed transport, a packet SRTP will not take) */
            self->send_errors++;
        }
        return sent;
    }
    if (self->fd < 0) {
        return 0;
    }
    if (staging(self)) {
        return stage_packet(self, buffer, size);
    }
    int length = size;
    if (self->protect(self->srtp, buffer, &length) != 0) {
        self->send_errors++;
        return 0;
    }
    send_one(self, buffer, length);
    return 1;
}

/* The wall clock as a 64-bit NTP timestamp (what RTCP sender reports carry). */
static unsigned long long ntp_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned long long seconds = (unsigned long long)now.tv_sec + 2208988800ULL;
    unsigned long long fraction = ((unsigned long long)now.tv_nsec << 32) / 1000000000ULL;
    return (seconds << 32) | fraction;
}

/* The pacer */

static void refill(void) {
    double now = monotonic();
    pacer.tokens += (now - pacer.refilled_at) * pacer.rate;
    if (pacer.tokens > pacer.burst) {
        pacer.tokens = pacer.burst;
    }
    pacer.refilled_at = now;
}

/* Let a video datagram of `size` bytes leave now? Only when nothing waits: order is kept. */
static int may_send(int size) {
    if (pacer.count > 0) {
        return 0;
    }
    if (pacer.rate <= 0.0) {
        return 1;
    }
    refill();
    if (pacer.tokens <= 0.0) {
        return 0;
    }
    pacer.tokens -= size;
    return 1;
}

static void release(Queued *queued) {
    queued->slot->queued--;
    Py_DECREF(queued->payload);
    Py_DECREF(queued->slot);
}

/* Queue a datagram; a full queue loses its oldest (its slot's history can resend it on a NACK). */
static void enqueue(Slot *self, const uint8_t *header, int header_size, PyObject *payload,
                    uint16_t sequence) {
    if (pacer.count == pacer.capacity) {
        Queued oldest = pacer.ring[pacer.head];
        pacer.head = (pacer.head + 1) % pacer.capacity;
        pacer.count--;
        pacer.overflow_dropped++;
        release(&oldest);
    }
    Queued *queued = &pacer.ring[(pacer.head + pacer.count) % pacer.capacity];
    Py_INCREF(self);
    Py_INCREF(payload);
    queued->slot = self;
    queued->payload = payload;
    queued->sequence = sequence;
    queued->header_size = (uint8_t)header_size;
    memcpy(queued->header, header, (size_t)header_size);
    self->queued++;
    pacer.count++;
    pacer.queued++;
}

/* Take back what queueing a datagram counted as sent: it never left. Its history entry goes, so
 * that a NACK cannot resend it either. */
static void unsend_queued(Slot *self, Queued *queued) {
    Entry *entry = &self->history[queued->sequence % HISTORY];
    if (entry->payload == queued->payload && entry->sequence == queued->sequence) {
        Py_CLEAR(entry->payload);
    }
    self->packets--;
    self->octets -= (unsigned long long)PyBytes_GET_SIZE(queued->payload);
}

/* Forget a slot's waiting datagrams (it stopped carrying their source, or closed): none of them
 * may leave, nor be resent from the history on a NACK. */
static void drop_queued(Slot *self) {
    if (self->queued == 0) {
        return;
    }
    Py_INCREF(self); /* the queue's references may be the last ones */
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < pacer.count; i++) {
        Queued *queued = &pacer.ring[(pacer.head + i) % pacer.capacity];
        if (queued->slot != self) {
            pacer.ring[(pacer.head + kept) % pacer.capacity] = *queued;
            kept++;
            continue;
        }
        unsend_queued(self, queued);
        pacer.stopped_dropped++;
        release(queued);
    }
    pacer.count = kept;
    Py_DECREF(self);
}

static PyObject *pace(PyObject *module, PyObject *args) {
    double rate, burst;
    Py_ssize_t capacity;
    if (!PyArg_ParseTuple(args, "ddn", &rate, &burst, &capacity)) {
        return NULL;
    }
    if (rate < 0.0 || burst < 0.0 || capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "bad pacer budget");
        return NULL;
    }
    if (capacity != pacer.capacity) {
        if (pacer.count > 0) {
            PyErr_SetString(PyExc_RuntimeError, "datagrams are waiting: drain them first");
            return NULL;
        }
        Queued *ring = PyMem_RawCalloc((size_t)capacity, sizeof(Queued));
        if (ring == NULL) {
            return PyErr_NoMemory();
        }
        PyMem_RawFree(pacer.ring);
        pacer.ring = ring;
        pacer.capacity = capacity;
        pacer.head = 0;
    }
    pacer.rate = rate;
    pacer.burst = burst;
    pacer.tokens = burst;
    pacer.refilled_at = monotonic();
    Py_RETURN_NONE;
}

static PyObject *drain(PyObject *module, PyObject *args) {
    Py_ssize_t most;
    int paced;
    if (!PyArg_ParseTuple(args, "np", &most, &paced)) {
        return NULL;
    }
    if (paced && pacer.rate > 0.0) {
        refill();
    }
    /* abs-send-time says when a datagram left, not when it was queued: the subscriber's bandwidth
     * estimate would read the pacer's delay as congestion. */
    unsigned int abs_send_time = (unsigned int)(ntp_now() >> 14) & 0xFFFFFF;
    uint8_t buffer[BUFFER_SIZE];
    Py_ssize_t sent = 0;
    PyObject *failure_type = NULL, *failure = NULL, *failure_traceback = NULL;
    stage_begin(); /* a chunk's datagrams leave a slot at a time */
    while (pacer.count > 0 && sent < most) {
        if (paced && pacer.rate > 0.0 && pacer.tokens <= 0.0) {
            break;
        }
        /* Off the queue before sending: a send callable may re-enter the fan-out. */
        Queued queued = pacer.ring[pacer.head];
        pacer.head = (pacer.head + 1) % pacer.capacity;
        pacer.count--;
        Py_ssize_t payload_size = PyBytes_GET_SIZE(queued.payload);
        int size = queued.header_size + (int)payload_size;
        memcpy(buffer, queued.header, queued.header_size);
        memcpy(buffer + queued.header_size, PyBytes_AS_STRING(queued.payload),
               (size_t)payload_size);
        int at = queued.slot->abs_send_time_at;
        if (at) {
            buffer[at] = (uint8_t)(abs_send_time >> 16);
            buffer[at + 1] = (uint8_t)(abs_send_time >> 8);
            buffer[at + 2] = (uint8_t)abs_send_time;
        }
        pacer.tokens -= size;
        int result = send_packet(queued.slot, buffer, size);
        if (result <= 0) { /* as the fan-out does with a packet it could not send */
            unsend_queued(queued.slot, &queued);
        }
        if (result < 0) { /* the rest of the queue still goes; the first error is raised */
            if (failure_type == NULL) {
                PyErr_Fetch(&failure_type, &failure, &failure_traceback);
            } else {
                PyErr_WriteUnraisable((PyObject *)queued.slot);
            }
        }
        release(&queued);
        sent++;
    }
    stage_end();
    if (failure_type != NULL) {
        PyErr_Restore(failure_type, failure, failure_traceback);
        return NULL;
    }
    double wait = 0.0;
    if (pacer.count > 0 && pacer.rate > 0.0 && pacer.tokens <= 0.0) {
        wait = -pacer.tokens / pacer.rate;
    }
    return Py_BuildValue("nnd", sent, pacer.count, wait);
}

static PyObject *use_gso(PyObject *module, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    stage.gso_off = !on;
    Py_RETURN_NONE;
}

static PyObject *send_counters(PyObject *module, PyObject *unused) {
    return Py_BuildValue("KKKK", stage.datagrams, stage.sends, stage.gso_sends, stage.gso_refused);
}

static PyObject *pacer_counters(PyObject *module, PyObject *unused) {
    return Py_BuildValue("nKKK", pacer.count, pacer.queued, pacer.overflow_dropped,
                         pacer.stopped_dropped);
}

/* Is this VP8 RTP payload the first packet of a keyframe (RFC 7741)? The payload descriptor's
 * S bit and partition index 0 mark a frame's first packet; the VP8 payload header after the
 * descriptor has the inverse key frame flag in bit 0 of its first byte. */
static int keyframe_start(const uint8_t *payload, Py_ssize_t size) {
    if (size < 2 || (payload[0] & 0x17) != 0x10) {
        return 0;
    }
    Py_ssize_t offset = 1;
    if (payload[0] & 0x80) {
        uint8_t extension = payload[1];
        offset = 2;
        if (extension & 0x80) { /* picture id, 7 or 15 bits */
            offset += (size > offset && (payload[offset] & 0x80)) ? 2 : 1;
        }
        if (extension & 0x40) { /* TL0PICIDX */
            offset += 1;
        }
        if (extension & 0x30) { /* TID / KEYIDX */
            offset += 1;
        }
    }
    return size > offset && (payload[offset] & 0x01) == 0;
}

static PyObject *vp8_keyframe_start(PyObject *module, PyObject *arg) {
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "payload must be bytes");
        return NULL;
    }
    return PyBool_FromLong(
        keyframe_start((const uint8_t *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg)));
}

static PyTypeObject SlotType;

/* What became of one publisher packet (see rtp_fanout.Fanned). */
typedef struct {
    long sent, held;
    int keyframe_start, frame_end;
} Fanned;

/* Send one publisher packet to each slot of `slots` (a list of Slot): the loop itself. A slot
 * whose send callable raises counts a send error and the others still get the packet; the first
 * such exception is raised when the loop is done (-1, with `fanned` filled in all the same). */
static int forward_packet(PyObject *slots, int video, uint16_t sequence, uint32_t timestamp,
                          int marker, PyObject *payload, int audio_level, Fanned *fanned) {
    Py_ssize_t payload_size = PyBytes_GET_SIZE(payload);
    int is_keyframe_start =
        video && keyframe_start((const uint8_t *)PyBytes_AS_STRING(payload), payload_size);
    /* A video frame ends with the marker bit; an Opus packet is a frame. */
    int frame_end = marker || !video;
    fanned->sent = fanned->held = 0;
    fanned->keyframe_start = is_keyframe_start;
    fanned->frame_end = frame_end;
    Py_ssize_t count = PyList_GET_SIZE(slots);
    if (count == 0) {
        return 0;
    }
    if (payload_size > BUFFER_SIZE - MAX_HEADER - TRAILER) {
        PyErr_SetString(PyExc_ValueError, "RTP payload too large");
        return -1;
    }
    unsigned long long ntp = ntp_now();
    unsigned int abs_send_time = (unsigned int)(ntp >> 14) & 0xFFFFFF;
    uint8_t ast[3] = {(uint8_t)(abs_send_time >> 16), (uint8_t)(abs_send_time >> 8),
                      (uint8_t)abs_send_time};
    uint8_t buffer[BUFFER_SIZE];
    long held = 0, sent = 0;
    double now = 0.0;
    PyObject *failure_type = NULL, *failure = NULL, *failure_traceback = NULL;
    /* The list may not change under the loop: a send to a Python callable could change it. */
    Py_INCREF(slots);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(slots); i++) {
        PyObject *item = PyList_GET_ITEM(slots, i);
        if (!Py_IS_TYPE(item, &SlotType)) {
            continue;
        }
        Slot *self = (Slot *)item;
        if (!self->header_size || !self->carrying) {
            continue;
        }
        if (self->rebase) {
            if (self->awaiting_keyframe && !is_keyframe_start) {
                if (frame_end) {
                    self->frames_dropped++;
                }
                held++;
                continue;
            }
            start_timeline(self, sequence, timestamp, is_keyframe_start);
        } else if ((uint16_t)(sequence - self->base_seq) >= 0x8000) {
            continue; /* from before this slot's timeline began (a late retransmission) */
        }
        uint16_t out_seq = (uint16_t)(sequence + self->seq_offset);
        uint32_t out_ts = timestamp + self->ts_offset;
        int header = write_header(self, buffer, marker, out_seq, out_ts, ast, audio_level);
        int result = 1;
        Py_INCREF(self);
        if (video && !may_send(header + (int)payload_size)) {
            enqueue(self, buffer, header, payload, out_seq);
        } else {
            memcpy(buffer + header, PyBytes_AS_STRING(payload), (size_t)payload_size);
            result = send_packet(self, buffer, header + (int)payload_size);
        }
        if (result < 0) {
            if (failure_type == NULL) {
                PyErr_Fetch(&failure_type, &failure, &failure_traceback);
            } else {
                PyErr_WriteUnraisable(item);
            }
            Py_DECREF(self);
            continue;
        }
        if (!result) {
            Py_DECREF(self);
            continue;
        }
        Entry *entry = &self->history[out_seq % HISTORY];
        Py_INCREF(payload);
        Py_XSETREF(entry->payload, payload);
        entry->sequence = out_seq;
        entry->timestamp = out_ts;
        entry->marker = (uint8_t)(marker != 0);
        entry->audio_level = (uint8_t)(audio_level < 0 ? 0x7f : audio_level);
        memcpy(entry->abs_send_time, ast, 3);
        if ((uint16_t)(out_seq - self->last_seq) < 0x8000) {
            self->last_seq = out_seq;
            self->last_ts = out_ts;
            self->has_last_ts = 1;
            if (frame_end) {
                if (now == 0.0) {
                    now = monotonic();
                }
                self->last_sent = now;
            }
        }
        self->packets++;
        self->octets += (unsigned long long)payload_size;
        self->report_timestamp = out_ts;
        self->report_ntp = ntp;
        if (frame_end) {
            self->frames_sent++;
        }
        Py_DECREF(self);
        sent++;
    }
    Py_DECREF(slots);
    fanned->sent = sent;
    fanned->held = held;
    if (failure_type != NULL) {
        PyErr_Restore(failure_type, failure, failure_traceback);
        return -1;
    }
    return 0;
}

static PyObject *forward(PyObject *module, PyObject *args) {
    PyObject *slots;
    unsigned int sequence_in, timestamp;
    int video, marker, audio_level;
    PyObject *payload;
    if (!PyArg_ParseTuple(args, "O!pIIiSi", &PyList_Type, &slots, &video, &sequence_in,
                          &timestamp, &marker, &payload, &audio_level)) {
        return NULL;
    }
    Fanned fanned;
    if (forward_packet(slots, video, (uint16_t)sequence_in, timestamp, marker, payload,
                       audio_level, &fanned) < 0) {
        return NULL;
    }
    return Py_BuildValue("llOOn", fanned.sent, fanned.held,
                         fanned.keyframe_start ? Py_True : Py_False,
                         fanned.frame_end ? Py_True : Py_False, pacer.count);
}

static PyMethodDef Slot_methods[] = {
    {"configure", (PyCFunction)Slot_configure, METH_VARARGS,
     "configure(template, payload_type, abs_send_time_at, audio_level_at)"},
    {"connect_socket", (PyCFunction)Slot_connect_socket, METH_VARARGS,
     "connect_socket(session, srtp_t, srtp_protect, fd, host, port): send SRTP on a UDP socket"},
    {"connect_callable", (PyCFunction)Slot_connect_callable, METH_O,
     "connect_callable(send): hand each unprotected packet to send(bytes) -> bool"},
    {"disconnect", (PyCFunction)Slot_disconnect, METH_NOARGS, "Send nothing more."},
    {"start_source", (PyCFunction)Slot_start_source, METH_VARARGS,
     "start_source(origin): rebase the timeline at the next packet (video: keyframe)"},
    {"stop_source", (PyCFunction)(void (*)(void))Slot_stop_source, METH_VARARGS | METH_KEYWORDS,
     "stop_source(*, drop_waiting=True): carry nothing; with drop_waiting, what waits in the "
     "pacer never leaves"},
    {"sent_packet", (PyCFunction)Slot_sent_packet, METH_VARARGS,
     "sent_packet(sequence_number): the unprotected packet sent with it, or None"},
    {"counters", (PyCFunction)Slot_counters, METH_NOARGS,
     "(packets, octets, frames_sent, frames_dropped, send_errors, rtp_ts, ntp, first_frame)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Slot_getset[] = {
    {"ready", (getter)Slot_get_ready, NULL, "configured", NULL},
    {"last_seq", (getter)Slot_get_last_seq, NULL, "the highest sequence number sent", NULL},
    {"mode", (getter)Slot_get_mode, NULL, "where packets go: 'socket', 'callable' or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SlotType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media_relay._fanout.Slot",
    .tp_basicsize = sizeof(Slot),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One subscriber slot's RTP stream.",
    .tp_new = Slot_new,
    .tp_dealloc = (destructor)Slot_dealloc,
    .tp_traverse = (traverseproc)Slot_traverse,
    .tp_clear = (inquiry)Slot_clear,
    .tp_methods = Slot_methods,
    .tp_getset = Slot_getset,
};

/* The ingest side: one publisher datagram SRTP-unprotected with the publisher's libsrtp session
 * and its RTP header read, which cost ~18 us per packet through pylibsrtp and aiortc's parser. */
typedef struct {
    int payload_type, marker;
    uint16_t sequence;
    uint32_t timestamp, ssrc;
    int position; /* where the payload starts */
    int payload_size, padding;
    long abs_send_time, audio_level; /* -1: absent */
} RtpFields;

/* Read an unprotected RTP packet's header: 0, or -1 when it is not valid RTP (or its payload is
 * larger than the fan-out loop can forward: refused here, once, not on every slot). */
static int parse_rtp(const uint8_t *buffer, int length, int abs_send_time_id,
                     int audio_level_id, RtpFields *fields) {
    if (length < 12 || (buffer[0] >> 6) != 2) {
        return -1;
    }
    int position = 12 + 4 * (buffer[0] & 0x0F);
    long abs_send_time = -1, audio_level = -1;
    if (buffer[0] & 0x10) {
        if (length < position + 4) {
            return -1;
        }
        int profile = buffer[position] << 8 | buffer[position + 1];
        int end = position + 4 + 4 * (buffer[position + 2] << 8 | buffer[position + 3]);
        if (length < end) {
            return -1;
        }
        int at = position + 4;
        int one_byte = profile == 0xBEDE, two_byte = (profile & 0xFFF0) == 0x1000;
        while ((one_byte || two_byte) && at < end) {
            int id, size_of;
            if (one_byte) {
                id = buffer[at] >> 4;
                size_of = (buffer[at] & 0x0F) + 1;
                if (id == 0) { /* padding */
                    at++;
                    continue;
                }
                if (id == 15) {
                    break;
                }
                at++;
            } else {
                id = buffer[at];
                if (id == 0) {
                    at++;
                    continue;
                }
                if (at + 1 >= end) {
                    break;
                }
                size_of = buffer[at + 1];
                at += 2;
            }
            if (at + size_of > end) {
                break;
            }
            if (id == abs_send_time_id && size_of == 3) {
                abs_send_time = buffer[at] << 16 | buffer[at + 1] << 8 | buffer[at + 2];
            } else if (id == audio_level_id && size_of >= 1) {
                audio_level = buffer[at];
            }
            at += size_of;
        }
        position = end;
    }
    int padding = 0;
    if (buffer[0] & 0x20) {
        padding = buffer[length - 1];
        if (!padding || padding > length - position) {
            return -1;
        }
    }
    if (length < position || length - position - padding > BUFFER_SIZE - MAX_HEADER - TRAILER) {
        return -1;
    }
    fields->payload_type = buffer[1] & 0x7F;
    fields->marker = buffer[1] >> 7;
    fields->sequence = (uint16_t)(buffer[2] << 8 | buffer[3]);
    fields->timestamp = (uint32_t)buffer[4] << 24 | (uint32_t)buffer[5] << 16 |
                        (uint32_t)buffer[6] << 8 | buffer[7];
    fields->ssrc = (uint32_t)buffer[8] << 24 | (uint32_t)buffer[9] << 16 |
                   (uint32_t)buffer[10] << 8 | buffer[11];
    fields->position = position;
    fields->payload_size = length - position - padding;
    fields->padding = padding;
    fields->abs_send_time = abs_send_time;
    fields->audio_level = audio_level;
    return 0;
}

/* Returns (payload_type, marker, sequence, timestamp, ssrc, payload, padding_size, abs_send_time,
 * audio_level) with -1 for an extension that is absent, or None for a datagram that does not
 * authenticate or is not valid RTP (dropped, as aiortc drops it). */
static PyObject *unprotect_rtp(PyObject *module, PyObject *args) {
    unsigned long long srtp, unprotect;
    PyObject *data;
    int abs_send_time_id, audio_level_id;
    if (!PyArg_ParseTuple(args, "KKSii", &srtp, &unprotect, &data, &abs_send_time_id,
                          &audio_level_id)) {
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size < 12 || size > BUFFER_SIZE) {
        Py_RETURN_NONE;
    }
    uint8_t buffer[BUFFER_SIZE];
    memcpy(buffer, PyBytes_AS_STRING(data), (size_t)size);
    int length = (int)size;
    RtpFields f;
    if (((protect_fn)(uintptr_t)unprotect)((void *)(uintptr_t)srtp, buffer, &length) != 0 ||
        parse_rtp(buffer, length, abs_send_time_id, audio_level_id, &f) < 0) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("iiIIky#ill", f.payload_type, f.marker, (unsigned int)f.sequence,
                         (unsigned int)f.timestamp, (unsigned long)f.ssrc,
                         (const char *)buffer + f.position, (Py_ssize_t)f.payload_size,
                         f.padding, f.abs_send_time, f.audio_level);
}

/* A publisher's stream, received: what the relay does with each of its media packets, in C.
 *
 * One Stream per publisher source (or simulcast layer), fed by the connection's Ingest (below)
 * once aiortc has routed its SSRC, and by Python (`receive`) for the packets aiortc routes itself
 * and for RTX retransmissions, unwrapped. Per packet it keeps what aiortc's receiver would:
 * receiver-report statistics (aiortc's StreamStatistics, read back by `statistics()`) and, for
 * video, the lost packets NACKs name (aiortc's NackGenerator: a window of the last 128 sequence
 * numbers). Then it forwards: the payload goes to every slot of `fanout` (when `live`), and the
 * counters a source's statistics and the layer choice read are kept here, and so is the speaker
 * level of a live audio stream: each RFC 6464 level smoothed as selection.SpeakerTracker.hear
 * does (`listen` sets its constants; `voice()` reads it). Python is called only
 * for events: `on_gap(lost)` for a new gap, `on_frame(abs_send_time, arrival_ms, octets, ssrc)`
 * at the end of a video frame with abs-send-time (the bandwidth estimator's feed, with the bytes
 * since the last call; with a `feed`, at most every `feed.every_ms` for the whole connection), `on_switch()` at a keyframe's first packet while `switching`, before it is forwarded,
 * `on_held()` when a slot waits for a keyframe, `on_waiting()` when the pacer holds datagrams, and
 * `on_packet(payload_type, marker, sequence, timestamp, ssrc, payload, padding, abs_send_time,
 * audio_level)` for
 * a tap that wants every packet in Python (tests, tools) instead of forwarding it. */
#define NACK_WINDOW 128 /* aiortc's RTP_HISTORY_SIZE */

/* The bandwidth estimator's feed, shared by the video streams of one connection: the bytes that
 * arrived since it was last fed, and when that was. A stream with a feed calls `on_frame` only at
 * a frame's end at least `every_ms` after the feed's last call, with every byte since. */
typedef struct {
    PyObject_HEAD
    long long every_ms, last_fed_ms, pending_octets;
} EstimateFeed;

static PyObject *EstimateFeed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"every_ms", NULL};
    long long every_ms;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L", keywords, &every_ms)) {
        return NULL;
    }
    EstimateFeed *self = (EstimateFeed *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->every_ms = every_ms;
    self->last_fed_ms = -(1LL << 62);
    return (PyObject *)self;
}

static PyMemberDef EstimateFeed_members[] = {
    {"every_ms", T_LONGLONG, offsetof(EstimateFeed, every_ms), 0, "the least time between calls"},
    {"last_fed_ms", T_LONGLONG, offsetof(EstimateFeed, last_fed_ms), READONLY,
     "arrival time of the last call"},
    {"pending_octets", T_LONGLONG, offsetof(EstimateFeed, pending_octets), READONLY,
     "bytes since the last call"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject EstimateFeedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media_relay._fanout.EstimateFeed",
    .tp_basicsize = sizeof(EstimateFeed),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The bandwidth estimator's feed of one connection.",
    .tp_new = EstimateFeed_new,
    .tp_members = EstimateFeed_members,
};

typedef struct {
    PyObject_HEAD
    int video;
    /* Receiver-report statistics */
    int restarted; /* `restart` was called: ssrc and clock_rate are the reception's */
    int receiving;
    uint32_t ssrc;
    unsigned int clock_rate;
    uint16_t base_seq, max_seq;
    long long cycles, packets_received, jitter_q4, last_arrival;
    uint32_t last_timestamp;
    int has_last_timestamp;
    /* NACK generator */
    int nacking, nack_started;
    uint16_t nack_max;
    uint8_t missing[65536 / 8];
    /* Forwarding */
    PyObject *fanout;
    int live, switching;
    long long pending_octets; /* for on_frame, without a feed */
    PyObject *feed;           /* an EstimateFeed, or NULL / None */
    unsigned long long octets, keyframes, frames_received, frames_forwarded;
    /* The speaker level (audio) */
    int listening, heard;
    double silence, smoothing, stale, loudness, heard_at;
    PyObject *on_gap, *on_frame, *on_switch, *on_held, *on_waiting, *on_packet;
} Stream;

static int uint16_gt(uint16_t a, uint16_t b) {
    uint16_t half = 0x8000;
    return (a > b && a - b < half) || (a < b && b - a > half);
}

static int missing_has(Stream *self, uint16_t seq) {
    return self->missing[seq >> 3] & (1 << (seq & 7));
}

static void missing_set(Stream *self, uint16_t seq, int on) {
    if (on) {
        self->missing[seq >> 3] |= (uint8_t)(1 << (seq & 7));
    } else {
        self->missing[seq >> 3] &= (uint8_t)~(1 << (seq & 7));
    }
}

static PyObject *Stream_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"video", NULL};
    int video = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "p", keywords, &video)) {
        return NULL;
    }
    Stream *self = (Stream *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL) {
        return NULL;
    }
    self->video = video;
    self->clock_rate = video ? 90000 : 48000;
    return (PyObject *)self;
}

static int Stream_traverse(Stream *self, visitproc visit, void *arg) {
    Py_VISIT(self->fanout);
    Py_VISIT(self->feed);
    Py_VISIT(self->on_gap);
    Py_VISIT(self->on_frame);
    Py_VISIT(self->on_switch);
    Py_VISIT(self->on_held);
    Py_VISIT(self->on_waiting);
    Py_VISIT(self->on_packet);
    return 0;
}

static int Stream_clear(Stream *self) {
    Py_CLEAR(self->fanout);
    Py_CLEAR(self->feed);
    Py_CLEAR(self->on_gap);
    Py_CLEAR(self->on_frame);
    Py_CLEAR(self->on_switch);
    Py_CLEAR(self->on_held);
    Py_CLEAR(self->on_waiting);
    Py_CLEAR(self->on_packet);
    return 0;
}

static void Stream_dealloc(Stream *self) {
    PyObject_GC_UnTrack(self);
    Stream_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A callback set and not None. */
static int is_set(PyObject *callback) { return callback != NULL && callback != Py_None; }

/* Call `callback(*args)` (a new tuple, stolen); -1 when it raised. */
static int call(PyObject *callback, PyObject *args) {
    if (args == NULL) {
        return -1;
    }
    Py_INCREF(callback); /* it may unset itself (stream.on_gap = None) while it runs */
    PyObject *result = PyObject_Call(callback, args, NULL);
    Py_DECREF(callback);
    Py_DECREF(args);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static void count_received(Stream *self, const RtpFields *f) {
    int in_order = !self->receiving || uint16_gt(f->sequence, self->max_seq);
    self->packets_received++;
    if (!self->receiving) {
        self->receiving = 1;
        self->base_seq = f->sequence;
    }
    if (!in_order) {
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long arrival = (long long)((double)now.tv_sec * self->clock_rate +
                                    (double)now.tv_nsec * self->clock_rate / 1e9);
    if (self->packets_received > 1 && f->sequence < self->max_seq) {
        self->cycles += 1 << 16;
    }
    self->max_seq = f->sequence;
    if (self->has_last_timestamp && f->timestamp != self->last_timestamp &&
        self->packets_received > 1) {
        long long transit = (arrival - self->last_arrival) -
                            (long long)(int32_t)(f->timestamp - self->last_timestamp);
        long long diff = transit < 0 ? -transit : transit;
        self->jitter_q4 += diff - ((self->jitter_q4 + 8) >> 4);
    }
    self->last_arrival = arrival;
    self->last_timestamp = f->timestamp;
    self->has_last_timestamp = 1;
}

/* aiortc's NackGenerator.add: 1 when the packet opened a new gap. */
static int note_sequence(Stream *self, uint16_t seq) {
    if (!self->nack_started) {
        self->nack_started = 1;
        self->nack_max = seq;
        return 0;
    }
    if (!uint16_gt(seq, self->nack_max)) {
        missing_set(self, seq, 0);
        return 0;
    }
    uint16_t advance = (uint16_t)(seq - self->nack_max);
    /* What falls out of the window (older than seq - 128) is forgotten, as aiortc truncates. */
    uint16_t forget_from = (uint16_t)(self->nack_max - NACK_WINDOW);
    int forget = advance > NACK_WINDOW + 1 ? NACK_WINDOW + 1 : advance;
    for (int i = 0; i < forget; i++) {
        missing_set(self, (uint16_t)(forget_from + i), 0);
    }
    int gap = advance - 1;
    int first = gap > NACK_WINDOW ? gap - NACK_WINDOW : 0;
    for (int i = first; i < gap; i++) {
        missing_set(self, (uint16_t)(self->nack_max + 1 + i), 1);
    }
    self->nack_max = seq;
    return gap > 0;
}

static PyObject *missing_list(Stream *self) {
    PyObject *lost = PyList_New(0);
    if (lost == NULL) {
        return NULL;
    }
    for (int i = NACK_WINDOW; i > 0; i--) {
        uint16_t seq = (uint16_t)(self->nack_max - i);
        if (missing_has(self, seq)) {
            PyObject *number = PyLong_FromLong(seq);
            if (number == NULL || PyList_Append(lost, number) < 0) {
                Py_XDECREF(number);
                Py_DECREF(lost);
                return NULL;
            }
            Py_DECREF(number);
        }
    }
    /* In numeric order, as aiortc's sorted(missing): its NACK packing needs it (across the wrap,
     * window order would make it shift by a negative count and send nothing). */
    if (PyList_Sort(lost) < 0) {
        Py_DECREF(lost);
        return NULL;
    }
    return lost;
}

/* One media packet of the stream: statistics, NACKs, forwarding, the estimator's feed. Returns
 * -1 with the first exception a callback raised; what the packet had to do is done all the same
 * (a failed callback loses its own event only). */
static int stream_receive(Stream *self, const RtpFields *f, PyObject *payload,
                          long long arrival_ms, int retransmission) {
    PyObject *failure_type = NULL, *failure = NULL, *failure_traceback = NULL;
#define KEEP_FAILURE()                                                                         \
    do {                                                                                       \
        if (failure_type == NULL) {                                                            \
            PyErr_Fetch(&failure_type, &failure, &failure_traceback);                          \
        } else {                                                                               \
            PyErr_WriteUnraisable((PyObject *)self);                                           \
        }                                                                                      \
    } while (0)
    Py_INCREF(self); /* a callback may drop the last other reference */
    if (!retransmission) {
        /* aiortc counts a retransmission in its RTX SSRC's statistics, not the media SSRC's. */
        count_received(self, f);
    }
    if (self->nacking && note_sequence(self, f->sequence) && is_set(self->on_gap)) {
        PyObject *lost = missing_list(self);
        if (lost == NULL || call(self->on_gap, Py_BuildValue("(N)", lost)) < 0) {
            KEEP_FAILURE();
        }
    }
    if (is_set(self->on_packet)) {
        if (call(self->on_packet,
                 Py_BuildValue("(iiIIkOill)", f->payload_type, f->marker,
                               (unsigned int)f->sequence,
                               (unsigned int)f->timestamp, (unsigned long)f->ssrc, payload,
                               f->padding, f->abs_send_time, f->audio_level)) < 0) {
            KEEP_FAILURE();
        }
    } else if (self->fanout != NULL && PyList_Check(self->fanout)) {
        if (self->listening && self->live && f->audio_level >= 0) {
            double now = monotonic();
            double level = (double)(f->audio_level & 0x7F);
            double loudness = self->silence - (level > self->silence ? self->silence : level);
            if (!self->heard || now - self->heard_at > self->stale) {
                self->loudness = 0.0;
            }
            self->loudness += self->smoothing * (loudness - self->loudness);
            self->heard_at = now;
            self->heard = 1;
        }
        Py_ssize_t payload_size = PyBytes_GET_SIZE(payload);
        self->octets += (unsigned long long)payload_size;
        if (self->switching && self->video &&
            keyframe_start((const uint8_t *)PyBytes_AS_STRING(payload), payload_size) &&
            is_set(self->on_switch)) {
            if (call(self->on_switch, PyTuple_New(0)) < 0) {
                KEEP_FAILURE();
            }
        }
        /* Read again after on_switch, which may have changed it. */
        PyObject *slots = self->fanout != NULL && PyList_Check(self->fanout) ? self->fanout : NULL;
        PyObject *none = NULL;
        if (!self->live || slots == NULL) {
            none = PyList_New(0);
            slots = none;
        }
        Fanned fanned = {0, 0, 0, 0};
        int forwarded = slots == NULL ? -1
                                      : forward_packet(slots, self->video, f->sequence,
                                                       f->timestamp, f->marker, payload,
                                                       (int)f->audio_level, &fanned);
        if (forwarded < 0) {
            KEEP_FAILURE();
        }
        if (slots != NULL) {
            if (fanned.keyframe_start) {
                self->keyframes++;
            }
            if (fanned.frame_end) {
                self->frames_received++;
                self->frames_forwarded += (unsigned long long)fanned.sent;
            }
            if (pacer.count && is_set(self->on_waiting) &&
                call(self->on_waiting, PyTuple_New(0)) < 0) {
                KEEP_FAILURE();
            }
            if (fanned.held && is_set(self->on_held) && call(self->on_held, PyTuple_New(0)) < 0) {
                KEEP_FAILURE();
            }
        }
        Py_XDECREF(none);
    }
    if (is_set(self->on_frame)) {
        EstimateFeed *feed = NULL;
        if (self->feed != NULL && Py_IS_TYPE(self->feed, &EstimateFeedType)) {
            feed = (EstimateFeed *)self->feed;
        }
        long long *pending = feed ? &feed->pending_octets : &self->pending_octets;
        *pending += PyBytes_GET_SIZE(payload) + f->padding;
        if (f->marker && f->abs_send_time >= 0 &&
            (feed == NULL || arrival_ms - feed->last_fed_ms >= feed->every_ms)) {
            long long octets = *pending;
            *pending = 0;
            if (feed != NULL) {
                feed->last_fed_ms = arrival_ms;
            }
            if (call(self->on_frame, Py_BuildValue("(lLLk)", f->abs_send_time, arrival_ms, octets,
                                                   (unsigned long)f->ssrc)) < 0) {
                KEEP_FAILURE();
            }
        }
    }
#undef KEEP_FAILURE
    Py_DECREF(self);
    if (failure_type != NULL) {
        PyErr_Restore(failure_type, failure, failure_traceback);
        return -1;
    }
    return 0;
}

static PyObject *Stream_receive(Stream *self, PyObject *args) {
    RtpFields f;
    unsigned int sequence, timestamp;
    unsigned long ssrc;
    PyObject *payload;
    long long arrival_ms;
    int retransmission = 0;
    if (!PyArg_ParseTuple(args, "iiIIkSillL|p", &f.payload_type, &f.marker, &sequence,
                          &timestamp, &ssrc, &payload, &f.padding, &f.abs_send_time,
                          &f.audio_level, &arrival_ms, &retransmission)) {
        return NULL;
    }
    if (PyBytes_GET_SIZE(payload) > BUFFER_SIZE - MAX_HEADER - TRAILER) {
        PyErr_SetString(PyExc_ValueError, "RTP payload too large");
        return NULL;
    }
    f.payload_type &= 0x7F;
    f.sequence = (uint16_t)sequence;
    f.timestamp = timestamp;
    f.ssrc = (uint32_t)ssrc;
    f.position = 0;
    f.payload_size = (int)PyBytes_GET_SIZE(payload);
    if (stream_receive(self, &f, payload, arrival_ms, retransmission) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Stream_restart(Stream *self, PyObject *args) {
    unsigned long ssrc;
    unsigned int clock_rate;
    int nacking;
    if (!PyArg_ParseTuple(args, "kIp", &ssrc, &clock_rate, &nacking)) {
        return NULL;
    }
    if (clock_rate == 0) {
        PyErr_SetString(PyExc_ValueError, "clock rate must be positive");
        return NULL;
    }
    self->restarted = 1;
    self->ssrc = (uint32_t)ssrc;
    self->clock_rate = clock_rate;
    self->receiving = 0;
    self->cycles = self->packets_received = self->jitter_q4 = self->last_arrival = 0;
    self->has_last_timestamp = 0;
    self->nacking = nacking;
    self->nack_started = 0;
    memset(self->missing, 0, sizeof self->missing);
    self->pending_octets = 0;
    Py_RETURN_NONE;
}

static PyObject *Stream_statistics(Stream *self, PyObject *unused) {
    if (!self->receiving) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(iiLLL)", self->base_seq, self->max_seq, self->cycles,
                         self->packets_received, self->jitter_q4);
}

static PyObject *Stream_take_octets(Stream *self, PyObject *unused) {
    unsigned long long octets = self->octets;
    self->octets = 0;
    return PyLong_FromUnsignedLongLong(octets);
}

static PyObject *Stream_listen(Stream *self, PyObject *args) {
    if (!PyArg_ParseTuple(args, "ddd", &self->silence, &self->smoothing, &self->stale)) {
        return NULL;
    }
    self->listening = 1;
    Py_RETURN_NONE;
}

static PyObject *Stream_voice(Stream *self, PyObject *unused) {
    if (!self->heard) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(dd)", self->loudness, self->heard_at);
}

static PyObject *Stream_counters(Stream *self, PyObject *unused) {
    return Py_BuildValue("(KKK)", self->keyframes, self->frames_received,
                         self->frames_forwarded);
}

static PyObject *Stream_get_missing(Stream *self, void *closure) {
    if (!self->nack_started) {
        return PyList_New(0);
    }
    return missing_list(self);
}

static PyObject *Stream_get_ssrc(Stream *self, void *closure) {
    if (!self->restarted) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->ssrc);
}

static PyMethodDef Stream_methods[] = {
    {"receive", (PyCFunction)Stream_receive, METH_VARARGS,
     "receive(payload_type, marker, sequence, timestamp, ssrc, payload, padding, abs_send_time, "
     "audio_level, arrival_ms, retransmission=False): one media packet (-1: no such extension)"},
    {"restart", (PyCFunction)Stream_restart, METH_VARARGS,
     "restart(ssrc, clock_rate, nacking): a new reception; statistics and NACKs start again"},
    {"statistics", (PyCFunction)Stream_statistics, METH_NOARGS,
     "(base_seq, max_seq, cycles, packets_received, jitter_q4), or None before any packet"},
    {"take_octets", (PyCFunction)Stream_take_octets, METH_NOARGS,
     "payload bytes forwarded or not since the last call"},
    {"listen", (PyCFunction)Stream_listen, METH_VARARGS,
     "listen(silence, smoothing, stale_seconds): smooth a live audio stream's levels"},
    {"voice", (PyCFunction)Stream_voice, METH_NOARGS,
     "(loudness, heard_at on the monotonic clock), or None before a level was heard"},
    {"counters", (PyCFunction)Stream_counters, METH_NOARGS,
     "(keyframes_received, frames_received, frames_forwarded)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Stream_members[] = {
    {"fanout", T_OBJECT, offsetof(Stream, fanout), 0, "the slots (a list) packets go to"},
    {"live", T_INT, offsetof(Stream, live), 0, "forwarded now"},
    {"switching", T_INT, offsetof(Stream, switching), 0, "slots wait for this layer's keyframe"},
    {"video", T_INT, offsetof(Stream, video), READONLY, "a video stream"},
    {"on_gap", T_OBJECT, offsetof(Stream, on_gap), 0, "on_gap(lost)"},
    {"on_frame", T_OBJECT, offsetof(Stream, on_frame), 0,
     "on_frame(abs_send_time, arrival_ms, octets, ssrc)"},
    {"feed", T_OBJECT, offsetof(Stream, feed), 0,
     "the connection's EstimateFeed, which paces on_frame (None: every frame's end)"},
    {"on_switch", T_OBJECT, offsetof(Stream, on_switch), 0, "on_switch()"},
    {"on_held", T_OBJECT, offsetof(Stream, on_held), 0, "on_held()"},
    {"on_waiting", T_OBJECT, offsetof(Stream, on_waiting), 0, "on_waiting()"},
    {"on_packet", T_OBJECT, offsetof(Stream, on_packet), 0,
     "on_packet(payload_type, marker, sequence, timestamp, ssrc, payload, padding, "
     "abs_send_time, audio_level)"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Stream_getset[] = {
    {"missing", (getter)Stream_get_missing, NULL, "the lost sequence numbers NACKs name", NULL},
    {"ssrc", (getter)Stream_get_ssrc, NULL, "the SSRC received (None before restart)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media_relay._fanout.Stream",
    .tp_basicsize = sizeof(Stream),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A publisher's stream, received and forwarded.",
    .tp_new = Stream_new,
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_traverse = (traverseproc)Stream_traverse,
    .tp_clear = (inquiry)Stream_clear,
    .tp_methods = Stream_methods,
    .tp_members = Stream_members,
    .tp_getset = Stream_getset,
};

/* A publisher connection's SRTP media, taken in as each datagram arrives (its `data_received`
 * replaces aioice's Connection.data_received, which queues every datagram for the DTLS
 * transport's task). A datagram of a routed SSRC (one aiortc has already routed to a tapped
 * receiver, which then `route`d it here) is unprotected, parsed and handed to its Stream with no
 * Python at all; everything else (DTLS, SRTCP, unrouted SSRCs, RTX) goes to `fallback`, aioice's
 * queue, as before. */
#define MAX_ROUTES 16

typedef struct {
    uint32_t ssrc;
    PyObject *stream;
    PyObject *receiver;
    PyObject *codecs; /* the receiver's payload type -> codec dict */
} Route;

typedef struct {
    PyObject_HEAD
    PyObject *fallback;
    PyObject *session; /* keeps the libsrtp session alive while its pointer is used */
    void *srtp;
    protect_fn unprotect;
    int abs_send_time_id, audio_level_id;
    Route routes[MAX_ROUTES];
    int count;
    unsigned long long rx_bytes, rx_packets;
} Ingest;

static PyObject *str_enabled;

static PyObject *Ingest_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"fallback", NULL};
    PyObject *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O", keywords, &fallback)) {
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    Ingest *self = (Ingest *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(fallback);
    self->fallback = fallback;
    return (PyObject *)self;
}

static void clear_route(Route *route) {
    Py_CLEAR(route->stream);
    Py_CLEAR(route->receiver);
    Py_CLEAR(route->codecs);
}

static int Ingest_traverse(Ingest *self, visitproc visit, void *arg) {
    Py_VISIT(self->fallback);
    Py_VISIT(self->session);
    for (int i = 0; i < self->count; i++) {
        Py_VISIT(self->routes[i].stream);
        Py_VISIT(self->routes[i].receiver);
        Py_VISIT(self->routes[i].codecs);
    }
    return 0;
}

static int Ingest_clear(Ingest *self) {
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->session);
    self->srtp = NULL;
    for (int i = 0; i < self->count; i++) {
        clear_route(&self->routes[i]);
    }
    self->count = 0;
    return 0;
}

static void Ingest_dealloc(Ingest *self) {
    PyObject_GC_UnTrack(self);
    Ingest_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Ingest_use_keys(Ingest *self, PyObject *args) {
    PyObject *session;
    unsigned long long srtp, unprotect;
    if (!PyArg_ParseTuple(args, "OKK", &session, &srtp, &unprotect)) {
        return NULL;
    }
    Py_INCREF(session);
    Py_XSETREF(self->session, session);
    self->srtp = (void *)(uintptr_t)srtp;
    self->unprotect = (protect_fn)(uintptr_t)unprotect;
    Py_RETURN_NONE;
}

static PyObject *Ingest_use_extensions(Ingest *self, PyObject *args) {
    if (!PyArg_ParseTuple(args, "ii", &self->abs_send_time_id, &self->audio_level_id)) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Ingest_route(Ingest *self, PyObject *args) {
    unsigned long ssrc;
    PyObject *receiver, *codecs, *stream;
    if (!PyArg_ParseTuple(args, "kOO!O!", &ssrc, &receiver, &PyDict_Type, &codecs, &StreamType,
                          &stream)) {
        return NULL;
    }
    /* One route per SSRC, and one per stream: a stream restarted on a new SSRC no longer takes
     * the old one's packets (they go to the fallback, as an unknown SSRC's do). */
    int at = 0;
    while (at < self->count && self->routes[at].ssrc != (uint32_t)ssrc &&
           self->routes[at].stream != stream) {
        at++;
    }
    if (at == MAX_ROUTES) {
        Py_RETURN_FALSE; /* the rest of this SSRC's packets take the Python route */
    }
    if (at == self->count) {
        self->count++;
    } else {
        clear_route(&self->routes[at]);
    }
    Route *route = &self->routes[at];
    route->ssrc = (uint32_t)ssrc;
    Py_INCREF(stream);
    route->stream = stream;
    Py_INCREF(receiver);
    route->receiver = receiver;
    Py_INCREF(codecs);
    route->codecs = codecs;
    Py_RETURN_TRUE;
}

static PyObject *Ingest_unroute(Ingest *self, PyObject *receiver) {
    int kept = 0;
    for (int i = 0; i < self->count; i++) {
        if (self->routes[i].receiver == receiver) {
            clear_route(&self->routes[i]);
        } else {
            self->routes[kept++] = self->routes[i];
        }
    }
    for (int i = kept; i < self->count; i++) {
        memset(&self->routes[i], 0, sizeof(Route));
    }
    self->count = kept;
    Py_RETURN_NONE;
}

static PyObject *Ingest_take_counts(Ingest *self, PyObject *unused) {
    PyObject *counts = Py_BuildValue("(KK)", self->rx_bytes, self->rx_packets);
    self->rx_bytes = self->rx_packets = 0;
    return counts;
}

static PyObject *Ingest_get_routed(Ingest *self, void *closure) {
    PyObject *routed = PyList_New(self->count);
    if (routed == NULL) {
        return NULL;
    }
    for (int i = 0; i < self->count; i++) {
        PyList_SET_ITEM(routed, i, PyLong_FromUnsignedLong(self->routes[i].ssrc));
    }
    return routed;
}

static long long ntp_epoch_ms_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* aiortc's clock.current_ms(): milliseconds from the NTP epoch (1900). */
    return ((long long)now.tv_sec + 2208988800LL) * 1000 + now.tv_nsec / 1000000;
}

static PyObject *Ingest_data_received(Ingest *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "data_received(data: bytes, component)");
        return NULL;
    }
    PyObject *data = args[0];
    const uint8_t *at = (const uint8_t *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    Route *route = NULL;
    /* SRTP only (RFC 5761: RTCP packet types 192-208 are not RTP's payload types). */
    if (self->srtp != NULL && size >= 12 && size <= BUFFER_SIZE && at[0] > 127 && at[0] < 192 &&
        !(at[1] > 191 && at[1] < 209)) {
        uint32_t ssrc = (uint32_t)at[8] << 24 | (uint32_t)at[9] << 16 | (uint32_t)at[10] << 8 |
                        at[11];
        for (int i = 0; i < self->count; i++) {
            if (self->routes[i].ssrc == ssrc) {
                route = &self->routes[i];
                break;
            }
        }
    }
    if (route == NULL) {
        if (self->fallback == NULL) {
            Py_RETURN_NONE; /* cleared by the garbage collector: the connection is going */
        }
        return PyObject_Vectorcall(self->fallback, args, 2, NULL);
    }
    self->rx_bytes += (unsigned long long)size;
    self->rx_packets++;
    /* Owned from here: the getattr below could run code that unroutes the SSRC. */
    PyObject *stream = Py_NewRef(route->stream), *codecs = Py_NewRef(route->codecs);
    PyObject *enabled = PyObject_GetAttr(route->receiver, str_enabled);
    int is_enabled = enabled == NULL ? -1 : PyObject_IsTrue(enabled);
    Py_XDECREF(enabled);
    if (is_enabled <= 0) {
        Py_DECREF(stream);
        Py_DECREF(codecs);
        return is_enabled < 0 ? NULL : Py_NewRef(Py_None);
    }
    uint8_t buffer[BUFFER_SIZE];
    memcpy(buffer, at, (size_t)size);
    int length = (int)size;
    RtpFields f;
    int known = 0;
    if (self->unprotect(self->srtp, buffer, &length) == 0 &&
        parse_rtp(buffer, length, self->abs_send_time_id, self->audio_level_id, &f) == 0) {
        PyObject *payload_type = PyLong_FromLong(f.payload_type); /* < 128: a cached small int */
        known = PyDict_Contains(codecs, payload_type);
        Py_DECREF(payload_type);
    } /* else: does not authenticate, or not valid RTP: dropped, as aiortc does */
    Py_DECREF(codecs);
    if (known <= 0) {
        Py_DECREF(stream);
        return known < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *payload =
        PyBytes_FromStringAndSize((const char *)buffer + f.position, f.payload_size);
    if (payload == NULL) {
        Py_DECREF(stream);
        return NULL;
    }
    int result = stream_receive((Stream *)stream, &f, payload, ntp_epoch_ms_now(), 0);
    Py_DECREF(stream);
    Py_DECREF(payload);
    if (result < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Ingest_methods[] = {
    {"data_received", (PyCFunction)(void (*)(void))Ingest_data_received, METH_FASTCALL,
     "data_received(data, component): a datagram of the connection"},
    {"use_keys", (PyCFunction)Ingest_use_keys, METH_VARARGS,
     "use_keys(session, srtp_t, srtp_unprotect): the connection's inbound SRTP"},
    {"use_extensions", (PyCFunction)Ingest_use_extensions, METH_VARARGS,
     "use_extensions(abs_send_time_id, audio_level_id): negotiated header extension ids (0: none)"},
    {"route", (PyCFunction)Ingest_route, METH_VARARGS,
     "route(ssrc, receiver, codecs, stream) -> bool: take in the SSRC's packets for the stream"},
    {"unroute", (PyCFunction)Ingest_unroute, METH_O,
     "unroute(receiver): the receiver's SSRCs go back to the fallback"},
    {"take_counts", (PyCFunction)Ingest_take_counts, METH_NOARGS,
     "(bytes, packets) taken in since the last call"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ingest_getset[] = {
    {"routed", (getter)Ingest_get_routed, NULL, "the SSRCs taken in", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject IngestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media_relay._fanout.Ingest",
    .tp_basicsize = sizeof(Ingest),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A publisher connection's SRTP media, taken in as it arrives.",
    .tp_new = Ingest_new,
    .tp_dealloc = (destructor)Ingest_dealloc,
    .tp_traverse = (traverseproc)Ingest_traverse,
    .tp_clear = (inquiry)Ingest_clear,
    .tp_methods = Ingest_methods,
    .tp_getset = Ingest_getset,
};

/* The receive side of a relay socket: the datagrams waiting on it, read in one `recvmmsg` call.
 * asyncio's datagram transport reads one datagram per event-loop turn (a selector wakeup, a
 * handle and a `recvfrom` each), and aioice then tries to parse every datagram as STUN, raising
 * and catching a ValueError for each media packet. Registered as the socket's reader in place of
 * the transport's, this hands RTP and RTCP (first byte 128-191, RFC 7983) straight to the ICE
 * connection's `data_received(data, component)`, as aioice would after its failed parse, and
 * everything else (STUN, DTLS) to the protocol's `datagram_received(data, address)`. At most
 * READ_BATCH datagrams a call: the loop's other sockets get their turn, and the selector reports
 * the socket again while anything is left. A callback's exception does not lose the rest of the
 * batch: the first is raised when the batch is done (the loop logs it, as it does a transport's),
 * any later one is reported as unraisable. */
#define READ_BATCH 32
#define READ_SIZE 65536 /* the largest UDP datagram fits: nothing is truncated */

static uint8_t *read_buffers; /* READ_BATCH * READ_SIZE; one set, used under the GIL */
static PyObject *str_data_received, *str_datagram_received, *str_error_received;

static PyObject *address_tuple(const struct sockaddr_storage *address) {
    char host[INET6_ADDRSTRLEN];
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(in->sin_port));
    }
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port),
                             (unsigned int)ntohl(in6->sin6_flowinfo),
                             (unsigned int)in6->sin6_scope_id);
    }
    return Py_BuildValue("(si)", "", 0);
}

static PyObject *read_datagrams(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "read_datagrams(fd, protocol, connection, component) takes 4 arguments");
        return NULL;
    }
    int fd = (int)PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *protocol = args[1], *connection = args[2], *component = args[3];
    if (read_buffers == NULL) {
        read_buffers = PyMem_RawMalloc((size_t)READ_BATCH * READ_SIZE);
        if (read_buffers == NULL) {
            return PyErr_NoMemory();
        }
    }
    struct mmsghdr messages[READ_BATCH];
    struct iovec vectors[READ_BATCH];
    struct sockaddr_storage addresses[READ_BATCH];
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < READ_BATCH; i++) {
        vectors[i].iov_base = read_buffers + (size_t)i * READ_SIZE;
        vectors[i].iov_len = READ_SIZE;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &addresses[i];
        messages[i].msg_hdr.msg_namelen = sizeof addresses[i];
    }
    int count = recvmmsg(fd, messages, READ_BATCH, MSG_DONTWAIT, NULL);
    if (count < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            Py_RETURN_NONE;
        }
        /* As asyncio's transport does: the protocol hears of the error, the socket stays. */
        PyObject *error = PyObject_CallFunction(PyExc_OSError, "is", errno, strerror(errno));
        if (error == NULL) {
            return NULL;
        }
        PyObject *result =
            PyObject_CallMethodObjArgs(protocol, str_error_received, error, NULL);
        Py_DECREF(error);
        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    /* Every datagram copied out first: a callback could re-enter and reuse the buffers. */
    PyObject *datagrams[READ_BATCH];
    for (int i = 0; i < count; i++) {
        datagrams[i] =
            PyBytes_FromStringAndSize(vectors[i].iov_base, (Py_ssize_t)messages[i].msg_len);
        if (datagrams[i] == NULL) {
            for (int j = 0; j < i; j++) {
                Py_DECREF(datagrams[j]);
            }
            return NULL;
        }
    }
    PyObject *failure_type = NULL, *failure = NULL, *failure_traceback = NULL;
    stage_begin(); /* the batch's video leaves a subscriber at a time, when it is all read */
    for (int i = 0; i < count; i++) {
        PyObject *data = datagrams[i];
        const uint8_t *at = (const uint8_t *)PyBytes_AS_STRING(data);
        Py_ssize_t size = PyBytes_GET_SIZE(data);
        PyObject *result = NULL;
        if (size > 0 && at[0] >= 128 && at[0] <= 191) {
            result =
                PyObject_CallMethodObjArgs(connection, str_data_received, data, component, NULL);
        } else {
            PyObject *address = address_tuple(&addresses[i]);
            if (address != NULL) {
                result = PyObject_CallMethodObjArgs(protocol, str_datagram_received, data,
                                                    address, NULL);
                Py_DECREF(address);
            }
        }
        Py_DECREF(data);
        if (result != NULL) {
            Py_DECREF(result);
        } else if (failure_type == NULL) {
            PyErr_Fetch(&failure_type, &failure, &failure_traceback);
        } else {
            PyErr_WriteUnraisable(protocol);
        }
    }
    stage_end();
    if (failure_type != NULL) {
        PyErr_Restore(failure_type, failure, failure_traceback);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"unprotect_rtp", unprotect_rtp, METH_VARARGS,
     "unprotect_rtp(srtp_t, srtp_unprotect, datagram, abs_send_time_id, audio_level_id) -> "
     "(payload_type, marker, sequence, timestamp, ssrc, payload, padding_size, abs_send_time, "
     "audio_level) or None"},
    {"forward", forward, METH_VARARGS,
     "forward(slots, video, seq, ts, marker, payload, audio_level) "
     "-> (sent, held, keyframe_start, frame_end, waiting): sent counts datagrams queued by the "
     "pacer, waiting is the pacer's queue length"},
    {"pace", pace, METH_VARARGS,
     "pace(bytes_per_second, burst_bytes, capacity): the video pacer's budget (rate 0: none)"},
    {"drain", drain, METH_VARARGS,
     "drain(most, paced) -> (sent, waiting, wait_seconds): send from the pacer's queue, at most "
     "`most` datagrams and, when paced, within the budget"},
    {"pacer_counters", pacer_counters, METH_NOARGS,
     "(waiting, queued, overflow_dropped, stopped_dropped)"},
    {"use_gso", use_gso, METH_O,
     "use_gso(on): send a batch's video a subscriber at a time by UDP GSO (the default), or "
     "one datagram a send"},
    {"send_counters", send_counters, METH_NOARGS,
     "(datagrams, sends, gso_sends, gso_refused): socket slots' datagrams and the system calls "
     "that sent them, since the process started"},
    {"read_datagrams", (PyCFunction)(void (*)(void))read_datagrams, METH_FASTCALL,
     "read_datagrams(fd, protocol, connection, component): a socket's waiting datagrams, RTP "
     "and RTCP to connection.data_received(data, component), the rest to "
     "protocol.datagram_received(data, address)"},
    {"vp8_keyframe_start", vp8_keyframe_start, METH_O,
     "vp8_keyframe_start(payload): is this VP8 payload the first packet of a keyframe"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "media_relay._fanout",
    .m_doc = "The relay's compiled RTP fan-out loop.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fanout(void) {
    if (PyType_Ready(&SlotType) < 0 || PyType_Ready(&StreamType) < 0 ||
        PyType_Ready(&IngestType) < 0 || PyType_Ready(&EstimateFeedType) < 0) {
        return NULL;
    }
    pacer.ring = PyMem_RawCalloc(PACER_CAPACITY, sizeof(Queued));
    if (pacer.ring == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    pacer.capacity = PACER_CAPACITY;
    str_data_received = PyUnicode_InternFromString("data_received");
    str_datagram_received = PyUnicode_InternFromString("datagram_received");
    str_error_received = PyUnicode_InternFromString("error_received");
    str_enabled = PyUnicode_InternFromString("_enabled");
    if (str_data_received == NULL || str_datagram_received == NULL || str_error_received == NULL ||
        str_enabled == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Slot", (PyObject *)&SlotType) < 0 ||
        PyModule_AddObjectRef(m, "Stream", (PyObject *)&StreamType) < 0 ||
        PyModule_AddObjectRef(m, "Ingest", (PyObject *)&IngestType) < 0 ||
        PyModule_AddObjectRef(m, "EstimateFeed", (PyObject *)&EstimateFeedType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
