/* The relay's per-packet fan-out loop, compiled: see media_relay/rtp_fanout.py for what it does.
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

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

static void disconnect(Slot *self) {
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
    drop_queued(self);
    self->carrying = 1;
    self->rebase = 1;
    self->awaiting_keyframe = self->video;
    self->first_frame = -1;
    self->origin = origin;
    Py_RETURN_NONE;
}

static PyObject *Slot_stop_source(Slot *self, PyObject *unused) {
    drop_queued(self);
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

/* Send one packet of `size` bytes in `buffer` (room for the SRTP trailer); 1 when it left. */
static int send_packet(Slot *self, uint8_t *buffer, int size) {
    if (self->send != NULL) {
        PyObject *packet = PyBytes_FromStringAndSize((const char *)buffer, size);
        if (packet == NULL) {
            return -1;
        }
        PyObject *result = PyObject_CallOneArg(self->send, packet);
        Py_DECREF(packet);
        if (result == NULL) {
            return -1;
        }
        int sent = PyObject_IsTrue(result);
        Py_DECREF(result);
        return sent;
    }
    if (self->fd < 0) {
        return 0;
    }
    int length = size;
    if (self->protect(self->srtp, buffer, &length) != 0) {
        self->send_errors++;
        return 0;
    }
    if (sendto(self->fd, buffer, (size_t)length, 0, (struct sockaddr *)&self->address,
               self->address_size) < 0) {
        /* A full socket buffer loses the packet as a network would: the history can resend it. */
        self->send_errors++;
    }
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
        Entry *entry = &self->history[queued->sequence % HISTORY];
        if (entry->payload == queued->payload && entry->sequence == queued->sequence) {
            Py_CLEAR(entry->payload);
        }
        self->packets--;
        self->octets -= (unsigned long long)PyBytes_GET_SIZE(queued->payload);
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
        if (result == 0) {
            queued.slot->send_errors++;
        }
        release(&queued);
        if (result < 0) {
            return NULL;
        }
        sent++;
    }
    double wait = 0.0;
    if (pacer.count > 0 && pacer.rate > 0.0 && pacer.tokens <= 0.0) {
        wait = -pacer.tokens / pacer.rate;
    }
    return Py_BuildValue("nnd", sent, pacer.count, wait);
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

static PyObject *forward(PyObject *module, PyObject *args) {
    PyObject *slots;
    unsigned int sequence_in, timestamp;
    int video, marker, audio_level;
    PyObject *payload;
    if (!PyArg_ParseTuple(args, "O!pIIiSi", &PyList_Type, &slots, &video, &sequence_in,
                          &timestamp, &marker, &payload, &audio_level)) {
        return NULL;
    }
    uint16_t sequence = (uint16_t)sequence_in;
    Py_ssize_t payload_size = PyBytes_GET_SIZE(payload);
    int is_keyframe_start =
        video && keyframe_start((const uint8_t *)PyBytes_AS_STRING(payload), payload_size);
    /* A video frame ends with the marker bit; an Opus packet is a frame. */
    int frame_end = marker || !video;
    Py_ssize_t count = PyList_GET_SIZE(slots);
    if (count == 0) {
        return Py_BuildValue("iiOOn", 0, 0, is_keyframe_start ? Py_True : Py_False,
                             frame_end ? Py_True : Py_False, pacer.count);
    }
    if (payload_size > BUFFER_SIZE - MAX_HEADER - TRAILER) {
        PyErr_SetString(PyExc_ValueError, "RTP payload too large");
        return NULL;
    }
    unsigned long long ntp = ntp_now();
    unsigned int abs_send_time = (unsigned int)(ntp >> 14) & 0xFFFFFF;
    uint8_t ast[3] = {(uint8_t)(abs_send_time >> 16), (uint8_t)(abs_send_time >> 8),
                      (uint8_t)abs_send_time};
    uint8_t buffer[BUFFER_SIZE];
    long held = 0, sent = 0;
    double now = 0.0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Slot *self = (Slot *)PyList_GET_ITEM(slots, i);
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
        if (video && !may_send(header + (int)payload_size)) {
            enqueue(self, buffer, header, payload, out_seq);
        } else {
            memcpy(buffer + header, PyBytes_AS_STRING(payload), (size_t)payload_size);
            result = send_packet(self, buffer, header + (int)payload_size);
        }
        if (result < 0) {
            return NULL;
        }
        if (!result) {
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
        sent++;
    }
    return Py_BuildValue("llOOn", sent, held, is_keyframe_start ? Py_True : Py_False,
                         frame_end ? Py_True : Py_False, pacer.count);
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
    {"stop_source", (PyCFunction)Slot_stop_source, METH_NOARGS, "Carry nothing."},
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
 * and its RTP header read, which cost ~18 us per packet through pylibsrtp and aiortc's parser.
 * Returns (payload_type, marker, sequence, timestamp, ssrc, payload, padding_size, abs_send_time,
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
    if (((protect_fn)(uintptr_t)unprotect)((void *)(uintptr_t)srtp, buffer, &length) != 0 ||
        length < 12 || (buffer[0] >> 6) != 2) {
        Py_RETURN_NONE;
    }
    int position = 12 + 4 * (buffer[0] & 0x0F);
    long abs_send_time = -1, audio_level = -1;
    if (buffer[0] & 0x10) {
        if (length < position + 4) {
            Py_RETURN_NONE;
        }
        int profile = buffer[position] << 8 | buffer[position + 1];
        int end = position + 4 + 4 * (buffer[position + 2] << 8 | buffer[position + 3]);
        if (length < end) {
            Py_RETURN_NONE;
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
            Py_RETURN_NONE;
        }
    }
    /* A payload the fan-out loop could not forward is refused here, once, not on every slot. */
    if (length < position || length - position - padding > BUFFER_SIZE - MAX_HEADER - TRAILER) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("iiIIky#ill", buffer[1] & 0x7F, buffer[1] >> 7,
                         (unsigned int)(buffer[2] << 8 | buffer[3]),
                         (unsigned int)buffer[4] << 24 | buffer[5] << 16 | buffer[6] << 8 |
                             buffer[7],
                         (unsigned long)buffer[8] << 24 | buffer[9] << 16 | buffer[10] << 8 |
                             buffer[11],
                         (const char *)buffer + position,
                         (Py_ssize_t)(length - position - padding), padding, abs_send_time,
                         audio_level);
}


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
    PyObject *failure_type = NULL, *failure = NULL, *failure_traceback = NULL;
    for (int i = 0; i < count; i++) {
        const uint8_t *at = vectors[i].iov_base;
        unsigned int size = messages[i].msg_len;
        PyObject *data = PyBytes_FromStringAndSize((const char *)at, (Py_ssize_t)size);
        PyObject *result = NULL;
        if (data != NULL) {
            if (size > 0 && at[0] >= 128 && at[0] <= 191) {
                result = PyObject_CallMethodObjArgs(connection, str_data_received, data,
                                                    component, NULL);
            } else {
                PyObject *address = address_tuple(&addresses[i]);
                if (address != NULL) {
                    result = PyObject_CallMethodObjArgs(protocol, str_datagram_received, data,
                                                        address, NULL);
                    Py_DECREF(address);
                }
            }
            Py_DECREF(data);
        }
        if (result != NULL) {
            Py_DECREF(result);
        } else if (failure_type == NULL) {
            PyErr_Fetch(&failure_type, &failure, &failure_traceback);
        } else {
            PyErr_WriteUnraisable(protocol);
        }
    }
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
    if (PyType_Ready(&SlotType) < 0) {
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
    if (str_data_received == NULL || str_datagram_received == NULL || str_error_received == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&SlotType);
    if (PyModule_AddObject(m, "Slot", (PyObject *)&SlotType) < 0) {
        Py_DECREF(&SlotType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
