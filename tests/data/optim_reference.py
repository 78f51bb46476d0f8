#!/usr/bin/env python3
"""Reference trajectories for fedmpi's optimizers -> tests/data/optim_reference.h.

An implementation of the update rules of tff.learning.optimizers that does not
share code with fedmpi. It follows the formulas in the reference notes
(/work/shared/reference/tff-semantics.md section 1.3) and the order of
operations of TFF's optimizers/{sgdm,adam,adamw,adagrad,yogi,rmsprop}.py.

TFF runs these on float32 tensors (the hparams in a learning process's state
are float32 too), so every operation here is rounded to float32: f32(a op b)
of two float32 values computed in double and rounded once is exactly
IEEE float32 arithmetic for + - * / and sqrt. pow is rounded from the double
result (the correctly rounded powf in practice). Pure Python, no numpy.

Regenerate the fixture (from the repository root):

    python3 tests/data/optim_reference.py > tests/data/optim_reference.h

tests/unit/test_optim_reference.c compares fedmpi against it with a relative
tolerance of 1e-6 (in practice the two agree to the last bit or so).
"""

import math
import struct
import sys

N = 3  # parameters per case
SHORT_STEPS = 6
LONG_STEPS = 100


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def add(a, b):
    return f32(a + b)


def sub(a, b):
    return f32(a - b)


def mul(a, b):
    return f32(a * b)


def div(a, b):
    return f32(a / b)


def sqrt(a):
    return f32(math.sqrt(a))


def powf(a, b):
    return f32(math.pow(a, b))


def sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


# TFF's defaults (build_* signatures); learning_rate is required by TFF for
# all but sgdm, fedmpi's defaults for it are noted in docs/optimizers.md.
DEFAULTS = {
    'sgdm': {'learning_rate': 0.01, 'momentum': 0.0},
    'adam': {'learning_rate': 0.001, 'beta_1': 0.9, 'beta_2': 0.999, 'epsilon': 1e-7},
    'adamw': {'learning_rate': 0.001, 'beta_1': 0.9, 'beta_2': 0.999, 'epsilon': 1e-7,
              'weight_decay': 0.004},
    'adagrad': {'learning_rate': 0.001, 'initial_preconditioner_value': 0.1, 'epsilon': 1e-7},
    'yogi': {'learning_rate': 0.01, 'beta_1': 0.9, 'beta_2': 0.999, 'epsilon': 1e-3,
             'initial_preconditioner_value': 1e-6},
    'rmsprop': {'learning_rate': 0.001, 'decay': 0.9, 'epsilon': 1e-7},
}


class Sgdm:
    def __init__(self, h):
        self.lr, self.m = f32(h['learning_rate']), f32(h['momentum'])
        self.v = [0.0] * N

    def slots(self):
        return [list(self.v)] if self.m > 0 else []

    def step(self, w, g):
        for i in range(N):
            if self.m > 0:
                self.v[i] = add(mul(self.m, self.v[i]), g[i])       # v = m*v + g
                w[i] = sub(w[i], mul(self.lr, self.v[i]))           # w -= lr*v
            else:
                w[i] = sub(w[i], mul(self.lr, g[i]))                # w -= lr*g


class Adam:
    """adam.py: normalized_lr = lr*sqrt(1-b2^t)/(1-b1^t); w -= lr_t*a/(sqrt(p)+eps)."""

    def __init__(self, h):
        self.lr, self.b1, self.b2 = f32(h['learning_rate']), f32(h['beta_1']), f32(h['beta_2'])
        self.eps = f32(h['epsilon'])
        self.t = 0
        self.a = [0.0] * N
        self.p = [0.0] * N

    def slots(self):
        return [list(self.a), list(self.p)]

    def step(self, w, g):
        self.t += 1
        t = f32(float(self.t))
        lr_t = div(mul(self.lr, sqrt(sub(1.0, powf(self.b2, t)))), sub(1.0, powf(self.b1, t)))
        for i in range(N):
            self.a[i] = add(self.a[i], mul(sub(g[i], self.a[i]), sub(1.0, self.b1)))
            self.p[i] = add(self.p[i], mul(sub(mul(g[i], g[i]), self.p[i]), sub(1.0, self.b2)))
            w[i] = sub(w[i], div(mul(lr_t, self.a[i]), add(sqrt(self.p[i]), self.eps)))


class AdamW(Adam):
    """adamw.py: w -= lr*(norm*a/(sqrt(p)+eps) + weight_decay*w), norm = sqrt(1-b2^t)/(1-b1^t)."""

    def __init__(self, h):
        super().__init__(h)
        self.wd = f32(h['weight_decay'])

    def step(self, w, g):
        self.t += 1
        t = f32(float(self.t))
        norm = div(sqrt(sub(1.0, powf(self.b2, t))), sub(1.0, powf(self.b1, t)))
        for i in range(N):
            self.a[i] = add(self.a[i], mul(sub(g[i], self.a[i]), sub(1.0, self.b1)))
            self.p[i] = add(self.p[i], mul(sub(mul(g[i], g[i]), self.p[i]), sub(1.0, self.b2)))
            upd = add(div(mul(norm, self.a[i]), add(sqrt(self.p[i]), self.eps)), mul(self.wd, w[i]))
            w[i] = sub(w[i], mul(self.lr, upd))


class Adagrad:
    """adagrad.py: p += g^2; w -= lr*g/sqrt(p+eps)."""

    def __init__(self, h):
        self.lr, self.eps = f32(h['learning_rate']), f32(h['epsilon'])
        self.p = [f32(h['initial_preconditioner_value'])] * N

    def slots(self):
        return [list(self.p)]

    def step(self, w, g):
        for i in range(N):
            self.p[i] = add(self.p[i], mul(g[i], g[i]))
            w[i] = sub(w[i], div(mul(self.lr, g[i]), sqrt(add(self.p[i], self.eps))))


class Yogi(Adam):
    """yogi.py: p += (1-b2)*sign(g^2-p)*g^2; w -= lr_t*a/(sqrt(p)+eps)."""

    def __init__(self, h):
        super().__init__(h)
        self.p = [f32(h['initial_preconditioner_value'])] * N
        self.signs = []

    def step(self, w, g):
        self.t += 1
        t = f32(float(self.t))
        lr_t = div(mul(self.lr, sqrt(sub(1.0, powf(self.b2, t)))), sub(1.0, powf(self.b1, t)))
        for i in range(N):
            self.a[i] = add(self.a[i], mul(sub(g[i], self.a[i]), sub(1.0, self.b1)))
            g2 = mul(g[i], g[i])
            s = sign(sub(g2, self.p[i]))
            self.signs.append(s)
            self.p[i] = add(self.p[i], mul(mul(sub(1.0, self.b2), s), g2))
            w[i] = sub(w[i], div(mul(lr_t, self.a[i]), add(sqrt(self.p[i]), self.eps)))


class RmsProp:
    """rmsprop.py: p += (g^2-p)*(1-decay); w -= lr*g/(sqrt(p)+eps)."""

    def __init__(self, h):
        self.lr, self.d, self.eps = f32(h['learning_rate']), f32(h['decay']), f32(h['epsilon'])
        self.p = [0.0] * N

    def slots(self):
        return [list(self.p)]

    def step(self, w, g):
        for i in range(N):
            self.p[i] = add(self.p[i], mul(sub(mul(g[i], g[i]), self.p[i]), sub(1.0, self.d)))
            w[i] = sub(w[i], div(mul(self.lr, g[i]), add(sqrt(self.p[i]), self.eps)))


CLASSES = {'sgdm': Sgdm, 'sgd': Sgdm, 'adam': Adam, 'adamw': AdamW, 'adagrad': Adagrad, 'yogi': Yogi,
           'rmsprop': RmsProp}

# w0[0] = 0: that coordinate then holds the sum of the updates themselves, so
# the relative tolerance applies to the updates (a ~3e-6 error in Adam's lr_t
# would hide below 1e-6 relative in a weight of size 1).
W0 = [f32(x) for x in (0.0, -1.5, 0.25)]
SHORT_G = [[f32(x) for x in row] for row in (
    (0.5, -1.25, 2.0),
    (0.25, 0.75, -3.0),
    (-1.5, 0.1, 0.4),
    (0.0, -0.6, 1.1),
    (2.5, 0.05, -0.2),
    (-0.3, 1.7, 0.01),
)]
LONG_G = [[f32(math.sin(0.37 * k + 1.3 * i) * (1.0 + 0.5 * math.cos(0.11 * k * (i + 1))))
           for i in range(N)] for k in range(LONG_STEPS)]

# (name, type, hparams passed to fm_optimizer_create, gradients)
CASES = [
    ('sgd', 'sgd', {'learning_rate': 0.1}, 'short'),
    ('sgdm', 'sgdm', {'learning_rate': 0.05, 'momentum': 0.9}, 'short'),
    ('adam_defaults', 'adam', {}, 'short'),
    ('adam', 'adam', {'learning_rate': 0.1}, 'short'),
    ('adam_custom', 'adam', {'learning_rate': 0.05, 'beta_1': 0.8, 'beta_2': 0.99, 'epsilon': 1e-3}, 'short'),
    ('adam_long', 'adam', {'learning_rate': 0.02}, 'long'),
    ('adamw_defaults', 'adamw', {}, 'short'),
    ('adamw', 'adamw', {'learning_rate': 0.1}, 'short'),
    ('adamw_custom', 'adamw', {'learning_rate': 0.05, 'beta_1': 0.85, 'beta_2': 0.995, 'epsilon': 1e-6,
                               'weight_decay': 0.1}, 'short'),
    ('adamw_long', 'adamw', {'learning_rate': 0.02, 'weight_decay': 0.01}, 'long'),
    ('adagrad_defaults', 'adagrad', {}, 'short'),
    ('adagrad', 'adagrad', {'learning_rate': 0.1}, 'short'),
    ('adagrad_custom', 'adagrad', {'learning_rate': 0.5, 'initial_preconditioner_value': 0.25,
                                   'epsilon': 1e-4}, 'short'),
    ('yogi_defaults', 'yogi', {}, 'short'),
    ('yogi', 'yogi', {'learning_rate': 0.1}, 'short'),
    ('yogi_custom', 'yogi', {'learning_rate': 0.05, 'beta_1': 0.5, 'beta_2': 0.9, 'epsilon': 1e-4,
                             'initial_preconditioner_value': 0.5}, 'short'),
    ('yogi_long', 'yogi', {'learning_rate': 0.02}, 'long'),
    ('rmsprop_defaults', 'rmsprop', {}, 'short'),
    ('rmsprop', 'rmsprop', {'learning_rate': 0.01}, 'short'),
    ('rmsprop_custom', 'rmsprop', {'learning_rate': 0.1, 'decay': 0.5, 'epsilon': 1e-4}, 'short'),
]


def cfloat(x):
    if not math.isfinite(x):
        raise ValueError(f'non-finite value {x} in the fixture')
    s = '%.9g' % x
    if not any(c in s for c in '.en'):
        s += '.0'
    return s + 'f'


def rows(m, indent='    '):
    return ',\n'.join(indent + '{' + ', '.join(cfloat(x) for x in r) + '}' for r in m)


def main(out):
    p = lambda s='': out.write(s + '\n')
    p('/* tests/data/optim_reference.h — GENERATED by tests/data/optim_reference.py; do not edit.')
    p(' * Regenerate: python3 tests/data/optim_reference.py > tests/data/optim_reference.h')
    p(' * Trajectories of TFF\'s optimizer update rules computed in emulated float32')
    p(' * (independent of fedmpi\'s code), for tests/unit/test_optim_reference.c. */')
    p('#ifndef FM_OPTIM_REFERENCE_H')
    p('#define FM_OPTIM_REFERENCE_H')
    p()
    p('#include <stddef.h>')
    p()
    p(f'#define FM_OPTIM_REF_N {N}')
    p('#define FM_OPTIM_REF_MAX_HP 6')
    p()
    p('typedef struct fm_optim_ref_case {')
    p('  const char *name;')
    p('  const char *type;')
    p('  size_t num_hp; /* hparams (and options) passed to fm_optimizer_create; the rest default */')
    p('  const char *keys[FM_OPTIM_REF_MAX_HP];')
    p('  double values[FM_OPTIM_REF_MAX_HP];')
    p('  size_t steps;')
    p('  const float (*g)[FM_OPTIM_REF_N];     /* steps x N gradients */')
    p('  float w0[FM_OPTIM_REF_N];')
    p('  const float (*w)[FM_OPTIM_REF_N];     /* steps x N: weights after each step */')
    p('  size_t num_slots;')
    p('  const float (*slots)[FM_OPTIM_REF_N]; /* (steps * num_slots) x N: state after each step */')
    p('} fm_optim_ref_case;')
    p()
    p(f'static const float fm_optim_ref_g_short[{SHORT_STEPS}][FM_OPTIM_REF_N] = {{\n{rows(SHORT_G)}}};')
    p(f'static const float fm_optim_ref_g_long[{LONG_STEPS}][FM_OPTIM_REF_N] = {{\n{rows(LONG_G)}}};')
    entries = []
    for name, typ, hp, gname in CASES:
        base = 'sgdm' if typ == 'sgd' else typ
        h = dict(DEFAULTS[base])
        h.update(hp)
        opt = CLASSES[typ](h)
        grads = SHORT_G if gname == 'short' else LONG_G
        w = list(W0)
        ws, slots = [], []
        for g in grads:
            opt.step(w, g)
            ws.append(list(w))
            slots.extend(opt.slots())
        ns = len(opt.slots())
        comment = ''
        if isinstance(opt, Yogi):
            comment = f'  /* sign(g^2 - s): {opt.signs.count(1.0)} x +1, {opt.signs.count(-1.0)} x -1 */'
        p()
        p(f'static const float fm_optim_ref_{name}_w[{len(grads)}][FM_OPTIM_REF_N] = {{\n{rows(ws)}}};{comment}')
        if ns:
            p(f'static const float fm_optim_ref_{name}_slots[{len(grads) * ns}][FM_OPTIM_REF_N] = {{\n'
              f'{rows(slots)}}};')
        keys = ', '.join(f'"{k}"' for k in hp) or 'NULL'
        vals = ', '.join(repr(float(v)) for v in hp.values()) or '0'
        entries.append(
            f'    {{"{name}", "{typ}", {len(hp)}, {{{keys}}}, {{{vals}}}, {len(grads)}, fm_optim_ref_g_{gname},\n'
            f'     {{{", ".join(cfloat(x) for x in W0)}}}, fm_optim_ref_{name}_w, {ns}, '
            f'{f"fm_optim_ref_{name}_slots" if ns else "NULL"}}}')
    p()
    p('static const fm_optim_ref_case fm_optim_ref_cases[] = {')
    p(',\n'.join(entries))
    p('};')
    p('#define FM_OPTIM_REF_NUM_CASES (sizeof fm_optim_ref_cases / sizeof fm_optim_ref_cases[0])')
    p()
    p('#endif')


if __name__ == '__main__':
    main(sys.stdout)
