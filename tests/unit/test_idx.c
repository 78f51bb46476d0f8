/* tests/unit/test_idx.c — the IDX reader on small files written here, plain
 * and gzipped (by the gzip command): shapes and bytes, wrong magic,
 * truncated headers and data, trailing bytes, corrupted gzip streams, zero
 * dimensions, missing files; the import into TFF's layout: preprocessing
 * (scale, invert, flatten, raw uint8), client ids, recorded attributes,
 * byte-identical reruns, the image/label count mismatch; and a smoke import
 * of the real Fashion-MNIST (skipped when /usr/share/datasets/fashion-mnist
 * is absent). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fm_test.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

/* ---- writing IDX files ------------------------------------------------------------- */

static void put_be32(FILE *f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  fwrite(b, 1, 4, f);
}

/* N images R x C with pixel (i, r, c) = (i * 37 + r * 5 + c * 3) % 256;
 * labels i % classes. */
static void write_idx_pair(const char *images, const char *labels, uint32_t N, uint32_t R, uint32_t C,
                           uint32_t labels_n, int classes) {
  FILE *f = fopen(images, "wb");
  assert_non_null(f);
  put_be32(f, 0x00000803);
  put_be32(f, N);
  put_be32(f, R);
  put_be32(f, C);
  for (uint32_t i = 0; i < N; i++)
    for (uint32_t r = 0; r < R; r++)
      for (uint32_t c = 0; c < C; c++) fputc((int)((i * 37 + r * 5 + c * 3) % 256), f);
  fclose(f);
  f = fopen(labels, "wb");
  assert_non_null(f);
  put_be32(f, 0x00000801);
  put_be32(f, labels_n);
  for (uint32_t i = 0; i < labels_n; i++) fputc((int)(i % (uint32_t)classes), f);
  fclose(f);
}

static unsigned char pix(size_t i, size_t r, size_t c) { return (unsigned char)((i * 37 + r * 5 + c * 3) % 256); }

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long s = ftell(f);
  fclose(f);
  return s;
}

static void run_cmd(const char *cmd) {
  if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static int have_gzip(void) { return system("gzip --version >/dev/null 2>&1") == 0; }

/* ---- the reader ------------------------------------------------------------------- */

static void test_read_plain_and_gz(void **state) {
  (void)state;
  write_idx_pair("a-images", "a-labels", 7, 3, 4, 7, 3);
  fm_idx im, lb;
  FM_ASSERT_OK(fm_idx_read("a-images", 0x00000803, &im));
  assert_int_equal(im.magic, 0x803);
  assert_int_equal(im.ndims, 3);
  assert_true(im.dims[0] == 7 && im.dims[1] == 3 && im.dims[2] == 4);
  assert_int_equal(im.count, 84);
  for (size_t i = 0; i < 7; i++)
    for (size_t r = 0; r < 3; r++)
      for (size_t c = 0; c < 4; c++) assert_int_equal(im.data[(i * 3 + r) * 4 + c], pix(i, r, c));
  FM_ASSERT_OK(fm_idx_read("a-labels", 0, &lb)); /* any unsigned-byte IDX */
  assert_int_equal(lb.ndims, 1);
  assert_int_equal(lb.dims[0], 7);
  assert_int_equal(lb.data[4], 1);
  if (!have_gzip()) {
    fm_idx_free(&im);
    fm_idx_free(&lb);
    skip();
  }
  run_cmd("gzip -c a-images > a-images.gz && gzip -c a-labels > a-labels.gz");
  fm_idx gz;
  FM_ASSERT_OK(fm_idx_read("a-images.gz", 0x00000803, &gz));
  assert_int_equal(gz.count, im.count);
  assert_memory_equal(gz.data, im.data, im.count);
  fm_idx_free(&gz);
  fm_idx_free(&im);
  fm_idx_free(&lb);
  fm_idx_free(&gz); /* twice is fine */
}

static void test_read_errors(void **state) {
  (void)state;
  write_idx_pair("b-images", "b-labels", 7, 3, 4, 7, 3);
  fm_idx x;
  /* wrong magic: labels where images are expected */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-labels", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-labels: wrong magic 0x00000801 (expected 0x00000803, IDX images");
  assert_null(x.data);
  FILE *f = fopen("text.idx", "w");
  fputs("hello, world\n", f);
  fclose(f);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("text.idx", 0, &x));
  FM_ASSERT_MSG_HAS("text.idx: wrong magic 0x68656c6c");
  /* truncated data */
  run_cmd("head -c 75 b-images > b-trunc");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-trunc", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-trunc: truncated: the header promises 7 x 3 x 4 = 84 bytes of data, the file holds 59");
  /* truncated header */
  run_cmd("head -c 2 b-images > b-short && head -c 9 b-images > b-short2");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-short", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-short: truncated: 2 of the 4 magic bytes");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-short2", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-short2: truncated: 5 of the 12 dimension bytes");
  /* bytes after the data */
  run_cmd("cp b-images b-long && printf 'xyz' >> b-long");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-long", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-long: more bytes than the header describes (7 x 3 x 4 = 84)");
  /* a zero dimension */
  f = fopen("b-zero", "wb");
  put_be32(f, 0x00000803);
  put_be32(f, 5);
  put_be32(f, 0);
  put_be32(f, 4);
  fclose(f);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-zero", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-zero: dimension 1 is 0");
  /* missing file */
  FM_ASSERT_ERR(FM_ERR_IO, fm_idx_read("nope.gz", 0, &x));
  FM_ASSERT_MSG_HAS("cannot open 'nope.gz'");
  if (!have_gzip()) skip();
  /* a truncated gzip stream */
  run_cmd("gzip -c b-images > b.gz");
  long gz = file_size("b.gz");
  char cmd[256];
  snprintf(cmd, sizeof cmd, "head -c %ld b.gz > b-cut.gz", gz - 12);
  run_cmd(cmd);
  int rc = fm_idx_read("b-cut.gz", 0x00000803, &x);
  assert_int_equal(rc, FM_ERR_FORMAT);
  FM_ASSERT_MSG_HAS("b-cut.gz: ");
  /* a corrupted stream: the data bytes change, the CRC no longer matches */
  run_cmd("cp b.gz b-bad.gz && printf '\\377\\377\\377\\377' | dd of=b-bad.gz bs=1 seek=25 conv=notrunc 2>/dev/null");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-bad.gz", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-bad.gz: ");
  /* gzip trailer CRC alone wrong (data intact) */
  run_cmd("cp b.gz b-crc.gz");
  f = fopen("b-crc.gz", "r+b");
  fseek(f, gz - 8, SEEK_SET);
  fputc(0x5a, f);
  fclose(f);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_read("b-crc.gz", 0x00000803, &x));
  FM_ASSERT_MSG_HAS("b-crc.gz: corrupted gzip data");
}

/* ---- import ------------------------------------------------------------------------- */

static int read_attr_str(hid_t f, const char *name, char *buf, size_t n) {
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  char *v = NULL;
  int rc = H5Aread(a, t, &v) < 0 ? -1 : 0;
  if (!rc) snprintf(buf, n, "%s", v);
  H5free_memory(v);
  H5Tclose(t);
  H5Aclose(a);
  return rc;
}

static double read_attr_num(hid_t f, const char *name) {
  double v = -1;
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  if (a < 0) return -12345;
  H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  return v;
}

static void test_import(void **state) {
  (void)state;
  write_idx_pair("c-images", "c-labels", 23, 3, 4, 23, 4);
  fm_idx_import_options o;
  fm_idx_import_defaults(&o);
  o.images_path = "c-images";
  o.labels_path = "c-labels";
  o.partition.num_clients = 3;
  o.partition.seed = 7;
  FM_ASSERT_OK(fm_idx_import(&o, "c.h5", NULL));
  assert_int_equal(access("c.h5.tmp", F_OK), -1); /* renamed into place */
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open("c.h5", NULL, &cd));
  assert_int_equal(fm_client_data_num_clients(cd), 3);
  assert_int_equal(fm_client_data_total_examples(cd), 23);
  assert_int_equal(fm_client_data_num_classes(cd), 4);
  assert_string_equal(fm_client_data_client_id(cd, 0), "f_00000");
  assert_string_equal(fm_client_data_client_id(cd, 2), "f_00002");
  assert_string_equal(fm_client_data_x_feature(cd), "pixels");
  assert_string_equal(fm_client_data_y_feature(cd), "label");
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 2);
  assert_true(shape[0] == 3 && shape[1] == 4);
  /* Every source image appears exactly once, scaled, with its label. */
  int seen[23] = {0};
  for (size_t k = 0; k < 3; k++) {
    fm_examples ex;
    FM_ASSERT_OK(fm_client_data_load(cd, k, &ex));
    assert_true(ex.n == 7 || ex.n == 8);
    int prev = -1;
    for (size_t j = 0; j < ex.n; j++) {
      /* identify the image by its first pixel: 37 i % 256 differs for i < 23 */
      int i = -1;
      for (int c = 0; c < 23; c++)
        if (ex.x[j * 12] == (float)pix((size_t)c, 0, 0) / 255.0f) i = c;
      assert_true(i >= 0);
      assert_true(i > prev); /* source order within a client */
      prev = i;
      seen[i]++;
      assert_int_equal(ex.y[j], i % 4);
      for (size_t r = 0; r < 3; r++)
        for (size_t c = 0; c < 4; c++) assert_true(ex.x[j * 12 + r * 4 + c] == (float)pix((size_t)i, r, c) / 255.0f);
    }
    fm_examples_free(&ex);
  }
  for (int i = 0; i < 23; i++) assert_int_equal(seen[i], 1);
  fm_client_data_close(&cd);

  /* Same inputs, same bytes. */
  FM_ASSERT_OK(fm_idx_import(&o, "c2.h5", NULL));
  run_cmd("cmp -s c.h5 c2.h5");

  /* invert + flatten; raw uint8 */
  o.invert = 1;
  o.flatten = 1;
  FM_ASSERT_OK(fm_idx_import(&o, "c_inv.h5", NULL));
  FM_ASSERT_OK(fm_client_data_open("c_inv.h5", NULL, &cd));
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 1);
  assert_int_equal(shape[0], 12);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  for (size_t p = 0; p < ex.n * 12; p++) assert_true(ex.x[p] >= 0.0f && ex.x[p] <= 1.0f);
  fm_examples_free(&ex);
  fm_client_data_close(&cd);
  o.no_scale = 1;
  o.flatten = 0;
  FM_ASSERT_OK(fm_idx_import(&o, "c_raw.h5", NULL));
  FM_ASSERT_OK(fm_client_data_open("c_raw.h5", NULL, &cd));
  const fm_feature_info *fi = fm_client_data_feature_info(cd, 1);
  assert_string_equal(fi->name, "pixels");
  assert_int_equal(fi->dtype, FM_DTYPE_UINT8);
  void *v = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 0, "pixels", FM_DTYPE_UINT8, &v, &n));
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  for (size_t p = 0; p < n; p++) assert_true(ex.x[p] == (float)((uint8_t *)v)[p]);
  fm_examples_free(&ex);
  fm_data_free(v);
  fm_client_data_close(&cd);

  /* The recorded partition. */
  fm_idx_import_defaults(&o);
  o.images_path = "c-images";
  o.labels_path = "c-labels";
  o.partition.method = FM_PARTITION_HETERO_DIR;
  o.partition.num_clients = 2;
  o.partition.alpha = 0.25;
  o.partition.min_size = 3;
  o.partition.seed = 99;
  fm_partition_result res;
  FM_ASSERT_OK(fm_idx_import(&o, "c_het.h5", &res));
  hid_t f = H5Fopen("c_het.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  char s[256];
  assert_int_equal(read_attr_str(f, "partition", s, sizeof s), 0);
  assert_string_equal(s, "hetero-dir");
  assert_int_equal(read_attr_str(f, "source_images", s, sizeof s), 0);
  assert_string_equal(s, "c-images");
  assert_int_equal(read_attr_str(f, "source_labels", s, sizeof s), 0);
  assert_string_equal(s, "c-labels");
  assert_int_equal(read_attr_str(f, "scale", s, sizeof s), 0);
  assert_string_equal(s, "x/255");
  assert_true(read_attr_num(f, "alpha") == 0.25);
  assert_true(read_attr_num(f, "seed") == 99);
  assert_true(read_attr_num(f, "num_clients") == 2);
  assert_true(read_attr_num(f, "min_size") == 3);
  assert_true(read_attr_num(f, "partition_attempts") == (double)res.attempts);
  assert_true(read_attr_num(f, "classes_per_client") == -12345); /* only what the method uses */
  assert_true(read_attr_num(f, "invert") == 0);
  H5Fclose(f);
}

static void test_import_errors(void **state) {
  (void)state;
  write_idx_pair("d-images", "d-labels", 10, 2, 2, 9, 3);
  fm_idx_import_options o;
  fm_idx_import_defaults(&o);
  o.images_path = "d-images";
  o.labels_path = "d-labels";
  o.partition.num_clients = 2;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_import(&o, "d.h5", NULL));
  FM_ASSERT_MSG_HAS("'d-images' has 10 images but 'd-labels' has 9 labels");
  assert_int_equal(access("d.h5", F_OK), -1);
  assert_int_equal(access("d.h5.tmp", F_OK), -1);
  o.labels_path = "d-images";
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_idx_import(&o, "d.h5", NULL));
  FM_ASSERT_MSG_HAS("d-images: wrong magic 0x00000803 (expected 0x00000801, IDX labels");
  write_idx_pair("e-images", "e-labels", 10, 2, 2, 10, 3);
  o.images_path = "e-images";
  o.labels_path = "e-labels";
  o.partition.num_clients = 11;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_idx_import(&o, "e.h5", NULL));
  FM_ASSERT_MSG_HAS("11 clients but only 10 examples");
  o.partition.num_clients = 2;
  FM_ASSERT_ERR(FM_ERR_IO, fm_idx_import(&o, "no/such/dir/e.h5", NULL));
  FM_ASSERT_MSG_HAS("no/such/dir/e.h5.tmp");
}

/* ---- the real Fashion-MNIST ------------------------------------------------------------- */

static void test_fashion_mnist(void **state) {
  (void)state;
  if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0) {
    fprintf(stderr, "note: %s absent (install dataset-fashion-mnist); skipped\n", FMNIST);
    skip();
  }
  fm_idx_import_options o;
  fm_idx_import_defaults(&o);
  o.images_path = FMNIST "/train-images-idx3-ubyte.gz";
  o.labels_path = FMNIST "/train-labels-idx1-ubyte.gz";
  o.partition.method = FM_PARTITION_DIRICHLET;
  o.partition.num_clients = 100;
  o.partition.alpha = 0.5;
  FM_ASSERT_OK(fm_idx_import(&o, "fmnist_train.h5", NULL));
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open("fmnist_train.h5", NULL, &cd));
  assert_int_equal(fm_client_data_num_clients(cd), 100);
  assert_int_equal(fm_client_data_total_examples(cd), 60000);
  assert_int_equal(fm_client_data_num_classes(cd), 10);
  size_t per_class[10] = {0};
  double distinct = 0;
  for (size_t k = 0; k < 100; k++) {
    fm_examples ex;
    FM_ASSERT_OK(fm_client_data_load(cd, k, &ex));
    assert_int_equal(ex.n, 600);
    assert_int_equal(ex.num_features, 784);
    int has[10] = {0};
    for (size_t i = 0; i < ex.n; i++) {
      assert_true(ex.y[i] >= 0 && ex.y[i] < 10);
      per_class[ex.y[i]]++;
      has[ex.y[i]] = 1;
    }
    for (size_t p = 0; p < ex.n * 784; p++)
      if (!(ex.x[p] >= 0.0f && ex.x[p] <= 1.0f)) fail_msg("pixel %g outside [0, 1]", (double)ex.x[p]);
    for (int c = 0; c < 10; c++) distinct += has[c] / 100.0;
    fm_examples_free(&ex);
  }
  for (int c = 0; c < 10; c++) assert_int_equal(per_class[c], 6000);
  printf("Fashion-MNIST train, dirichlet alpha 0.5: %.2f labels per client\n", distinct);
  assert_true(distinct < 9.5); /* skewed */
  fm_client_data_close(&cd);
  fm_idx lb;
  FM_ASSERT_OK(fm_idx_read(FMNIST "/t10k-labels-idx1-ubyte.gz", 0x00000801, &lb));
  assert_int_equal(lb.dims[0], 10000);
  fm_idx_free(&lb);
  remove("fmnist_train.h5");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_plain_and_gz), cmocka_unit_test(test_read_errors),
      cmocka_unit_test(test_import),            cmocka_unit_test(test_import_errors),
      cmocka_unit_test(test_fashion_mnist),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
