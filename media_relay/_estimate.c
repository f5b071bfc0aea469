/* aiortc's receive-side bandwidth estimator (aiortc.rate.RemoteBitrateEstimator), compiled.
 *
 * The relay feeds one per publisher connection (media_relay.aiortc_internals._SharedEstimate) at
 * most every 60 ms; in Python each call cost ~30-50 us, a tenth of a gallery relay's samples. This
 * is the same algorithm step for step (inter-arrival groups of abs-send-time, the Kalman overuse
 * estimator, the adaptive-threshold overuse detector, AIMD rate control, a one-second incoming
 * bitrate), with Python's arithmetic kept where it matters: round() is round-half-even (rint),
 * int() truncates, and None states are flags. tests/media_relay/test_estimate.py holds it to
 * aiortc's answers call for call. The incoming bitrate keeps one entry per millisecond that had
 * data (aiortc keeps a bucket for every millisecond of the window and walks them all). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define BURST_DELTA_THRESHOLD_MS 5
#define MAX_ADAPT_OFFSET_MS 15
#define MIN_NUM_DELTAS 60
#define DELTA_COUNTER_MAX 1000
#define MIN_FRAME_PERIOD_HISTORY_LENGTH 60
#define INTER_ARRIVAL_SHIFT 26
#define TIMESTAMP_GROUP_LENGTH_MS 5
#define TIMESTAMP_TO_MS (1000.0 / (double)(1 << INTER_ARRIVAL_SHIFT))
#define RATE_WINDOW_MS 1000
#define RATE_SCALE 8000
#define FEEDBACK_INTERVAL_MS 500

enum { NORMAL, UNDERUSING, OVERUSING };
enum { HOLD, INCREASE, DECREASE };

typedef struct {
    int set; /* a TimestampGroup exists */
    int has_arrival;
    long long arrival_time;
    uint32_t first_timestamp, last_timestamp;
    long long size;
} Group;

typedef struct {
    long long ms, count, value;
} RateEntry;

typedef struct {
    PyObject_HEAD
    /* RateCounter (incoming bitrate) */
    RateEntry entries[RATE_WINDOW_MS];
    int head, length;
    long long total_count, total_value;
    int has_origin;
    long long origin_ms;
    int incoming_bitrate_initialized;
    /* InterArrival */
    uint32_t group_length;
    Group current, previous;
    /* OveruseEstimator */
    double E[2][2];
    long long num_of_deltas;
    double offset, previous_offset_estimator, slope;
    double ts_delta_hist[MIN_FRAME_PERIOD_HISTORY_LENGTH];
    int hist_start, hist_length;
    double avg_noise, var_noise;
    /* OveruseDetector */
    int hypothesis;
    int has_detector_update;
    long long detector_last_update_ms;
    long long overuse_counter;
    int has_overuse_time;
    double overuse_time;
    double previous_offset_detector;
    double threshold;
    /* AimdRateControl */
    int has_avg_max;
    double avg_max_bitrate_kbps, var_max_bitrate_kbps;
    long long current_bitrate;
    int current_bitrate_initialized;
    int has_first_throughput_time;
    long long first_estimated_throughput_time;
    int has_last_change;
    long long last_change_ms;
    int near_max;
    long long latest_estimated_throughput;
    long long rtt;
    int state;
    /* RemoteBitrateEstimator */
    int has_last_update;
    long long last_update_ms;
} Estimator;

/* uint32 arithmetic as aiortc.utils */
static uint32_t uint32_add(uint32_t a, uint32_t b) { return a + b; }

static int uint32_gt(uint32_t a, uint32_t b) {
    uint32_t half = 0x80000000u;
    return (a < b && b - a > half) || (a > b && a - b < half);
}

/* RateCounter */

static void rate_reset(Estimator *self) {
    self->head = self->length = 0;
    self->total_count = self->total_value = 0;
    self->has_origin = 0;
}

static void rate_erase_old(Estimator *self, long long now_ms) {
    long long origin = now_ms - RATE_WINDOW_MS + 1;
    if (!self->has_origin || self->origin_ms >= origin) {
        return;
    }
    while (self->length > 0 && self->entries[self->head].ms < origin) {
        self->total_count -= self->entries[self->head].count;
        self->total_value -= self->entries[self->head].value;
        self->head = (self->head + 1) % RATE_WINDOW_MS;
        self->length--;
    }
    self->origin_ms = origin;
}

static void rate_add(Estimator *self, long long value, long long now_ms) {
    if (!self->has_origin) {
        self->has_origin = 1;
        self->origin_ms = now_ms;
    } else {
        rate_erase_old(self, now_ms);
    }
    RateEntry *last =
        self->length ? &self->entries[(self->head + self->length - 1) % RATE_WINDOW_MS] : NULL;
    if (last != NULL && last->ms >= now_ms) {
        last->count++;
        last->value += value;
    } else {
        if (self->length == RATE_WINDOW_MS) { /* cannot happen: one entry per ms of the window */
            self->total_count -= self->entries[self->head].count;
            self->total_value -= self->entries[self->head].value;
            self->head = (self->head + 1) % RATE_WINDOW_MS;
            self->length--;
        }
        RateEntry *entry = &self->entries[(self->head + self->length) % RATE_WINDOW_MS];
        entry->ms = now_ms;
        entry->count = 1;
        entry->value = value;
        self->length++;
    }
    self->total_count++;
    self->total_value += value;
}

/* The rate, or -1 for None. */
static long long rate_rate(Estimator *self, long long now_ms) {
    if (self->has_origin) {
        rate_erase_old(self, now_ms);
        long long active_window_size = now_ms - self->origin_ms + 1;
        if (self->total_count > 0 && active_window_size > 1) {
            return (long long)rint((double)RATE_SCALE * (double)self->total_value /
                                   (double)active_window_size);
        }
    }
    return -1;
}

/* InterArrival: 1 with deltas set when a group ended. */
static int compute_deltas(Estimator *self, uint32_t timestamp, long long arrival_time,
                          long long packet_size, uint32_t *ts_delta, long long *arrival_delta,
                          long long *size_delta) {
    int has_deltas = 0;
    Group *current = &self->current;
    if (!current->set) {
        memset(current, 0, sizeof *current);
        current->set = 1;
        current->first_timestamp = current->last_timestamp = timestamp;
    } else if (uint32_add(timestamp, -current->first_timestamp) >= 0x80000000u) {
        return 0; /* out of order */
    } else {
        /* belongs_to_burst */
        uint32_t timestamp_delta = uint32_add(timestamp, -current->last_timestamp);
        long long timestamp_delta_ms = (long long)rint(TIMESTAMP_TO_MS * (double)timestamp_delta);
        long long arrival_time_delta = arrival_time - current->arrival_time;
        int burst = timestamp_delta_ms == 0 || ((arrival_time_delta - timestamp_delta_ms) < 0 &&
                                                arrival_time_delta <= BURST_DELTA_THRESHOLD_MS);
        int new_group =
            !burst && uint32_add(timestamp, -current->first_timestamp) > self->group_length;
        if (new_group) {
            if (self->previous.set) {
                *ts_delta = uint32_add(current->last_timestamp, -self->previous.last_timestamp);
                *arrival_delta = current->arrival_time - self->previous.arrival_time;
                *size_delta = current->size - self->previous.size;
                has_deltas = 1;
            }
            self->previous = *current;
            memset(current, 0, sizeof *current);
            current->set = 1;
            current->first_timestamp = current->last_timestamp = timestamp;
        } else if (uint32_gt(timestamp, current->last_timestamp)) {
            current->last_timestamp = timestamp;
        }
    }
    current->size += packet_size;
    current->arrival_time = arrival_time;
    current->has_arrival = 1;
    return has_deltas;
}

/* OveruseEstimator */

static double update_min_frame_period(Estimator *self, double ts_delta) {
    double min_frame_period = ts_delta;
    if (self->hist_length >= MIN_FRAME_PERIOD_HISTORY_LENGTH) {
        self->hist_start = (self->hist_start + 1) % MIN_FRAME_PERIOD_HISTORY_LENGTH;
        self->hist_length--;
    }
    for (int i = 0; i < self->hist_length; i++) {
        double old = self->ts_delta_hist[(self->hist_start + i) % MIN_FRAME_PERIOD_HISTORY_LENGTH];
        /* Python's min(old, current): the first argument when they compare equal. */
        min_frame_period = min_frame_period < old ? min_frame_period : old;
    }
    self->ts_delta_hist[(self->hist_start + self->hist_length) % MIN_FRAME_PERIOD_HISTORY_LENGTH] =
        ts_delta;
    self->hist_length++;
    return min_frame_period;
}

static void update_noise_estimate(Estimator *self, double residual, double ts_delta) {
    double alpha = 0.01;
    if (self->num_of_deltas > 10 * 30) {
        alpha = 0.002;
    }
    double beta = pow(1 - alpha, ts_delta * 30.0 / 1000.0);
    self->avg_noise = beta * self->avg_noise + (1 - beta) * residual;
    double deviation = self->avg_noise - residual;
    self->var_noise = beta * self->var_noise + (1 - beta) * (deviation * deviation);
    if (self->var_noise < 1) {
        self->var_noise = 1;
    }
}

static void estimator_update(Estimator *self, long long time_delta_ms,
                             double timestamp_delta_ms, long long size_delta, int hypothesis) {
    const double process_noise[2] = {1e-13, 1e-3};
    double min_frame_period = update_min_frame_period(self, timestamp_delta_ms);
    double t_ts_delta = (double)time_delta_ms - timestamp_delta_ms;
    double fs_delta = (double)size_delta;
    self->num_of_deltas =
        self->num_of_deltas + 1 < DELTA_COUNTER_MAX ? self->num_of_deltas + 1 : DELTA_COUNTER_MAX;
    self->E[0][0] += process_noise[0];
    self->E[1][1] += process_noise[1];
    if ((hypothesis == OVERUSING && self->offset < self->previous_offset_estimator) ||
        (hypothesis == UNDERUSING && self->offset > self->previous_offset_estimator)) {
        self->E[1][1] += 10 * process_noise[1];
    }
    double h[2] = {fs_delta, 1.0};
    double Eh[2] = {self->E[0][0] * h[0] + self->E[0][1] * h[1],
                    self->E[1][0] * h[0] + self->E[1][1] * h[1]};
    double residual = t_ts_delta - self->slope * h[0] - self->offset;
    if (hypothesis == NORMAL) {
        double max_residual = 3.0 * sqrt(self->var_noise);
        if (fabs(residual) < max_residual) {
            update_noise_estimate(self, residual, min_frame_period);
        } else {
            update_noise_estimate(self, residual < 0 ? -max_residual : max_residual,
                                  min_frame_period);
        }
    }
    double denom = self->var_noise + h[0] * Eh[0] + h[1] * Eh[1];
    double K[2] = {Eh[0] / denom, Eh[1] / denom};
    double IKh[2][2] = {{1.0 - K[0] * h[0], -K[0] * h[1]}, {-K[1] * h[0], 1.0 - K[1] * h[1]}};
    double e00 = self->E[0][0], e01 = self->E[0][1];
    self->E[0][0] = e00 * IKh[0][0] + self->E[1][0] * IKh[0][1];
    self->E[0][1] = e01 * IKh[0][0] + self->E[1][1] * IKh[0][1];
    self->E[1][0] = e00 * IKh[1][0] + self->E[1][0] * IKh[1][1];
    self->E[1][1] = e01 * IKh[1][0] + self->E[1][1] * IKh[1][1];
    self->previous_offset_estimator = self->offset;
    self->slope += K[0] * residual;
    self->offset += K[1] * residual;
}

/* OveruseDetector */

static void update_threshold(Estimator *self, double modified_offset, long long now_ms) {
    if (!self->has_detector_update) {
        self->has_detector_update = 1;
        self->detector_last_update_ms = now_ms;
    }
    if (fabs(modified_offset) > self->threshold + MAX_ADAPT_OFFSET_MS) {
        self->detector_last_update_ms = now_ms;
        return;
    }
    double k = fabs(modified_offset) < self->threshold ? 0.039 : 0.0087;
    long long time_delta_ms = now_ms - self->detector_last_update_ms;
    if (time_delta_ms > 100) {
        time_delta_ms = 100;
    }
    self->threshold += k * (fabs(modified_offset) - self->threshold) * (double)time_delta_ms;
    if (self->threshold > 600) {
        self->threshold = 600;
    }
    if (self->threshold < 6) {
        self->threshold = 6;
    }
    self->detector_last_update_ms = now_ms;
}

static void detect(Estimator *self, double offset, double timestamp_delta_ms,
                   long long num_of_deltas, long long now_ms) {
    if (num_of_deltas < 2) {
        return; /* aiortc returns NORMAL without changing its state */
    }
    double T = (double)(num_of_deltas < MIN_NUM_DELTAS ? num_of_deltas : MIN_NUM_DELTAS) * offset;
    if (T > self->threshold) {
        if (!self->has_overuse_time) {
            self->has_overuse_time = 1;
            self->overuse_time = timestamp_delta_ms / 2;
        } else {
            self->overuse_time += timestamp_delta_ms;
        }
        self->overuse_counter++;
        if (self->overuse_time > 10 && self->overuse_counter > 1 &&
            offset >= self->previous_offset_detector) {
            self->overuse_counter = 0;
            self->overuse_time = 0;
            self->hypothesis = OVERUSING;
        }
    } else if (T < -self->threshold) {
        self->overuse_counter = 0;
        self->has_overuse_time = 0;
        self->hypothesis = UNDERUSING;
    } else {
        self->overuse_counter = 0;
        self->has_overuse_time = 0;
        self->hypothesis = NORMAL;
    }
    self->previous_offset_detector = offset;
    update_threshold(self, T, now_ms);
}

/* AimdRateControl */

static long long clamp_bitrate(Estimator *self, long long new_bitrate,
                               long long estimated_throughput) {
    long long max_bitrate = (long long)(1.5 * (double)estimated_throughput) + 10000;
    if (self->current_bitrate > max_bitrate) {
        max_bitrate = self->current_bitrate;
    }
    return new_bitrate < max_bitrate ? new_bitrate : max_bitrate;
}

static long long near_max_rate_increase(Estimator *self) {
    double bits_per_frame = (double)self->current_bitrate / 30;
    double packets_per_frame = ceil(bits_per_frame / (8 * 1200));
    if (packets_per_frame <= 0) {
        return 4000; /* a zero estimate: aiortc divides by zero here and raises */
    }
    double avg_packet_size_bits = bits_per_frame / packets_per_frame;
    long long response_time = self->rtt + 100;
    long long increase = (long long)((avg_packet_size_bits * 1000) / (double)response_time);
    return increase > 4000 ? increase : 4000;
}

static void update_max_throughput_estimate(Estimator *self, double estimated_throughput_kbps) {
    double alpha = 0.05;
    if (!self->has_avg_max) {
        self->has_avg_max = 1;
        self->avg_max_bitrate_kbps = estimated_throughput_kbps;
    } else {
        self->avg_max_bitrate_kbps =
            (1 - alpha) * self->avg_max_bitrate_kbps + alpha * estimated_throughput_kbps;
    }
    double norm = self->avg_max_bitrate_kbps > 1 ? self->avg_max_bitrate_kbps : 1;
    double deviation = self->avg_max_bitrate_kbps - estimated_throughput_kbps;
    self->var_max_bitrate_kbps =
        (1 - alpha) * self->var_max_bitrate_kbps + alpha * (deviation * deviation) / norm;
    if (self->var_max_bitrate_kbps > 2.5) {
        self->var_max_bitrate_kbps = 2.5;
    }
    if (self->var_max_bitrate_kbps < 0.4) {
        self->var_max_bitrate_kbps = 0.4;
    }
}

/* The new bitrate, or -1 for None. `estimated_throughput` -1 is None. */
static long long rate_control_update(Estimator *self, int usage, long long estimated_throughput,
                                     long long now_ms) {
    if (!self->current_bitrate_initialized && estimated_throughput >= 0) {
        if (!self->has_first_throughput_time) {
            self->has_first_throughput_time = 1;
            self->first_estimated_throughput_time = now_ms;
        } else if (now_ms - self->first_estimated_throughput_time > 3000) {
            self->current_bitrate = estimated_throughput;
            self->current_bitrate_initialized = 1;
        }
    }
    if (!self->current_bitrate_initialized && usage != OVERUSING) {
        return -1;
    }
    if (usage == NORMAL && self->state == HOLD) {
        self->has_last_change = 1;
        self->last_change_ms = now_ms;
        self->state = INCREASE;
    } else if (usage == OVERUSING) {
        self->state = DECREASE;
    } else if (usage == UNDERUSING) {
        self->state = HOLD;
    }
    long long new_bitrate = self->current_bitrate;
    if (estimated_throughput >= 0) {
        self->latest_estimated_throughput = estimated_throughput;
    } else {
        estimated_throughput = self->latest_estimated_throughput;
    }
    double estimated_throughput_kbps = (double)estimated_throughput / 1000;
    if (self->state == INCREASE) {
        if (self->has_avg_max) {
            double sigma_kbps = sqrt(self->var_max_bitrate_kbps * self->avg_max_bitrate_kbps);
            if (estimated_throughput_kbps >= self->avg_max_bitrate_kbps + 3 * sigma_kbps) {
                self->near_max = 0;
                self->has_avg_max = 0;
            }
        }
        if (self->near_max) {
            /* _additive_rate_increase(last_change_ms, now_ms): last_change_ms is set here. */
            new_bitrate += (long long)((double)(now_ms - self->last_change_ms) *
                                       (double)near_max_rate_increase(self) / 1000);
        } else {
            double alpha = 1.08;
            if (self->has_last_change) {
                long long elapsed_ms = now_ms - self->last_change_ms;
                if (elapsed_ms > 1000) {
                    elapsed_ms = 1000;
                }
                alpha = pow(alpha, (double)elapsed_ms / 1000);
            }
            double increase = (alpha - 1) * (double)new_bitrate;
            new_bitrate += increase > 1000 ? (long long)increase : 1000;
        }
        self->has_last_change = 1;
        self->last_change_ms = now_ms;
    } else if (self->state == DECREASE) {
        if (self->has_avg_max) {
            double sigma_kbps = sqrt(self->var_max_bitrate_kbps * self->avg_max_bitrate_kbps);
            if (estimated_throughput_kbps < self->avg_max_bitrate_kbps - 3 * sigma_kbps) {
                self->has_avg_max = 0;
            }
        }
        update_max_throughput_estimate(self, estimated_throughput_kbps);
        self->near_max = 1;
        new_bitrate = (long long)rint(0.85 * (double)estimated_throughput);
        self->has_last_change = 1;
        self->last_change_ms = now_ms;
        self->state = HOLD;
    }
    self->current_bitrate = clamp_bitrate(self, new_bitrate, estimated_throughput);
    return self->current_bitrate;
}

static PyObject *Estimator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":Estimator", keywords)) {
        return NULL;
    }
    Estimator *self = (Estimator *)type->tp_alloc(type, 0); /* zeroed */
    if (self == NULL) {
        return NULL;
    }
    self->incoming_bitrate_initialized = 1;
    self->group_length = (uint32_t)((TIMESTAMP_GROUP_LENGTH_MS << INTER_ARRIVAL_SHIFT) / 1000);
    self->E[0][0] = 100.0;
    self->E[1][1] = 0.1;
    self->slope = 1.0 / 64;
    self->var_noise = 50.0;
    self->hypothesis = NORMAL;
    self->threshold = 12.5;
    self->var_max_bitrate_kbps = 0.4;
    self->current_bitrate = 30000000;
    self->latest_estimated_throughput = 30000000;
    self->rtt = 200;
    self->state = HOLD;
    return (PyObject *)self;
}

static PyObject *Estimator_add(Estimator *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"arrival_time_ms", "abs_send_time", "payload_size", "ssrc", NULL};
    long long arrival_time_ms, payload_size;
    unsigned long abs_send_time, ssrc;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LkLk", keywords, &arrival_time_ms,
                                     &abs_send_time, &payload_size, &ssrc)) {
        return NULL;
    }
    uint32_t timestamp = (uint32_t)(abs_send_time << 8);
    if (rate_rate(self, arrival_time_ms) >= 0) {
        self->incoming_bitrate_initialized = 1;
    } else if (self->incoming_bitrate_initialized) {
        rate_reset(self);
        self->incoming_bitrate_initialized = 0;
    }
    rate_add(self, payload_size, arrival_time_ms);
    uint32_t ts_delta;
    long long arrival_delta, size_delta;
    if (compute_deltas(self, timestamp, arrival_time_ms, payload_size, &ts_delta, &arrival_delta,
                       &size_delta)) {
        double timestamp_delta_ms = (double)ts_delta * TIMESTAMP_TO_MS;
        estimator_update(self, arrival_delta, timestamp_delta_ms, size_delta, self->hypothesis);
        detect(self, self->offset, timestamp_delta_ms, self->num_of_deltas, arrival_time_ms);
    }
    if (!self->has_last_update || arrival_time_ms - self->last_update_ms > FEEDBACK_INTERVAL_MS ||
        self->hypothesis == OVERUSING) {
        long long target = rate_control_update(self, self->hypothesis,
                                               rate_rate(self, arrival_time_ms), arrival_time_ms);
        if (target >= 0) {
            self->has_last_update = 1;
            self->last_update_ms = arrival_time_ms;
            return PyLong_FromLongLong(target);
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef Estimator_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Estimator_add, METH_VARARGS | METH_KEYWORDS,
     "add(arrival_time_ms, abs_send_time, payload_size, ssrc) -> the estimate in bits per second "
     "when one is due, else None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EstimatorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media_relay._estimate.Estimator",
    .tp_basicsize = sizeof(Estimator),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's RemoteBitrateEstimator, compiled.",
    .tp_new = Estimator_new,
    .tp_methods = Estimator_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "media_relay._estimate",
    .m_doc = "aiortc's receive-side bandwidth estimator, compiled.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__estimate(void) {
    if (PyType_Ready(&EstimatorType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Estimator", (PyObject *)&EstimatorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
