/* src/model/model_private.h — helpers shared by the files of src/model only.
 * Not installed. */
#ifndef FEDMPI_MODEL_PRIVATE_H
#define FEDMPI_MODEL_PRIVATE_H

#include "fedmpi/model.h"

/* FM_OK if spec is a valid input spec (ndim, non-zero dims, num_features the
 * product of the shape, 0 < num_classes <= INT32_MAX); records the error otherwise. */
int fm__input_spec_check(const fm_input_spec *spec);

/* FM_OK if spec's D and C fit the int dimensions BLAS takes (FM_ERR_OVERFLOW
 * naming the model otherwise); also runs fm__input_spec_check. */
int fm__input_spec_check_blas(const fm_input_spec *spec, const char *model);

/* The model's vtable (its copy), to tell an implementation's own models apart. */
const fm_model_ops *fm__model_ops(const fm_model *m);

/* Drop the default user metrics (accuracy): for models whose own metrics replace
 * it (sequence models, the autoencoder), before adding theirs. */
void fm__model_clear_user_metrics(fm_model *m);

#endif
