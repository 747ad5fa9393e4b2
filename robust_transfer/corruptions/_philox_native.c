/*
 * The integer half of the torch backend's random numbers, compiled for the CPU.
 *
 * Two functions with exactly the bits of their tensor-op forms in _philox.py (tested word for
 * word): the Philox 4x32-10 words of a batch of streams, and the inversion of the Poisson CDF
 * table of shot noise. Why native code: in tensor ops, every Philox round is ten passes over
 * int64 temporaries (5 ms per 921,600 words on one core of the development machine), and the
 * table inversion is a chain of gathers; in a loop they are a few nanoseconds per word. Only
 * integers are produced here: the float draws derived from the words (uniform, Box-Muller)
 * stay tensor ops, so the CPU's floats are the same whichever form made the words. CUDA keeps
 * the tensor ops, which give the same words there.
 *
 * Buffers come through the buffer protocol (numpy views of CPU tensors); sizes are checked and
 * the GIL is released while a function runs, so the torch backend's CPU threads work in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_ROUNDS 10

/* Philox 4x32-10 of counter (block, 0, subsequence, 0) and key (k0, k1) into out[0..3]. */
static inline void philox_block(uint32_t block, uint32_t subsequence, uint32_t k0, uint32_t k1,
                                int64_t *out)
{
    uint32_t c0 = block, c1 = 0, c2 = subsequence, c3 = 0;
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t product0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t product1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t next0 = (uint32_t)(product1 >> 32) ^ c1 ^ k0;
        uint32_t next2 = (uint32_t)(product0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)product1;
        c3 = (uint32_t)product0;
        c0 = next0;
        c2 = next2;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static int int64_buffer(Py_buffer *view, const char *name)
{
    if (view->itemsize != 8 || view->len % 8) {
        PyErr_Format(PyExc_ValueError, "%s must be an int64 buffer", name);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(philox_words_doc,
"philox_words(out, k0, k1, subsequence)\n\n"
"Write the Philox 4x32-10 blocks 0 .. B-1 of counter (block, 0, subsequence, 0) for the N\n"
"keys (k0[i], k1[i]) into out, a C-contiguous int64 buffer of N * B * 4 words (image, block,\n"
"word). Keys are int64 buffers of N words below 2**32.");

static PyObject *philox_words(PyObject *self, PyObject *args)
{
    Py_buffer out, k0, k1;
    unsigned long long subsequence;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*y*y*K", &out, &k0, &k1, &subsequence))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = k0.len / 8;
    if (!int64_buffer(&out, "out") || !int64_buffer(&k0, "k0") || !int64_buffer(&k1, "k1"))
        goto done;
    if (k1.len != k0.len || count == 0 || (out.len / 8) % (4 * count)) {
        PyErr_SetString(PyExc_ValueError, "out must hold 4 words per block for each key");
        goto done;
    }
    if (subsequence > 0xFFFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "subsequence must be below 2**32");
        goto done;
    }
    Py_ssize_t blocks = out.len / 8 / 4 / count;
    if ((unsigned long long)blocks > 0x100000000ull) {
        PyErr_SetString(PyExc_ValueError, "more than 2**32 blocks in one stream");
        goto done;
    }
    const int64_t *keys0 = (const int64_t *)k0.buf, *keys1 = (const int64_t *)k1.buf;
    int64_t *words = (int64_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t image = 0; image < count; image++) {
        int64_t *image_words = words + image * blocks * 4;
        for (Py_ssize_t block = 0; block < blocks; block++)
            philox_block((uint32_t)block, (uint32_t)subsequence, (uint32_t)keys0[image],
                         (uint32_t)keys1[image], image_words + block * 4);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&k0);
    PyBuffer_Release(&k1);
    return result;
}

PyDoc_STRVAR(poisson_invert_doc,
"poisson_invert(counts, words, levels, thresholds, guide, guide_bits, table_length)\n\n"
"counts[i] = #{k : thresholds[levels[i] * table_length + k] <= words[i]}: the search of\n"
"_philox._invert_poisson_table, started at guide[(levels[i] << guide_bits) + (words[i] >>\n"
"(32 - guide_bits))] (a flat position in thresholds). All buffers int64; every row of\n"
"thresholds must end with 2**32, which no word reaches.");

static PyObject *poisson_invert(PyObject *self, PyObject *args)
{
    Py_buffer counts, words, levels, thresholds, guide;
    int guide_bits;
    Py_ssize_t table_length;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*y*y*y*y*in", &counts, &words, &levels, &thresholds, &guide,
                          &guide_bits, &table_length))
        return NULL;
    PyObject *result = NULL;
    if (!int64_buffer(&counts, "counts") || !int64_buffer(&words, "words")
            || !int64_buffer(&levels, "levels") || !int64_buffer(&thresholds, "thresholds")
            || !int64_buffer(&guide, "guide"))
        goto done;
    Py_ssize_t size = words.len / 8, level_count = guide.len / 8 >> guide_bits;
    if (counts.len != words.len || levels.len != words.len || guide_bits < 1 || guide_bits > 31
            || table_length < 1 || thresholds.len / 8 != level_count * table_length) {
        PyErr_SetString(PyExc_ValueError, "poisson_invert: buffer sizes do not match");
        goto done;
    }
    const int64_t *word = (const int64_t *)words.buf, *level = (const int64_t *)levels.buf;
    const int64_t *threshold = (const int64_t *)thresholds.buf, *start = (const int64_t *)guide.buf;
    int64_t *count = (int64_t *)counts.buf;
    int bad_input = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < size; i++) {
        int64_t w = word[i], l = level[i];
        if (l < 0 || l >= level_count || w < 0 || w > 0xFFFFFFFFll) {
            bad_input = 1;
            break;
        }
        /* The row's last threshold is 2**32 > w, so the search stops inside the row; the
         * bounds only keep a malformed table from reading outside its buffer. */
        int64_t row_start = l * table_length, row_end = row_start + table_length - 1;
        int64_t position = start[(l << guide_bits) + (w >> (32 - guide_bits))];
        if (position < row_start || position > row_end) {
            bad_input = 1;
            break;
        }
        while (position < row_end && threshold[position] <= w)
            position++;
        count[i] = position - row_start;
    }
    Py_END_ALLOW_THREADS
    if (bad_input) {
        PyErr_SetString(PyExc_ValueError,
                        "poisson_invert: a level outside the table, a word outside 32 bits or a guide "
                        "entry outside its row");
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&counts);
    PyBuffer_Release(&words);
    PyBuffer_Release(&levels);
    PyBuffer_Release(&thresholds);
    PyBuffer_Release(&guide);
    return result;
}

static PyMethodDef methods[] = {
    {"philox_words", philox_words, METH_VARARGS, philox_words_doc},
    {"poisson_invert", poisson_invert, METH_VARARGS, poisson_invert_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_philox_native",
    "Philox 4x32-10 words and Poisson table inversion on the CPU (see _philox.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__philox_native(void)
{
    return PyModule_Create(&module);
}
