"""Cross-check of our dwtDct watermark against the Python invisible-watermark library itself.

Not run by CI (the library needs OpenCV and PyWavelets, ~140 MB of packages); how to run it and what it printed are
in docs/watermark.md. Usage, with the library's source folder on PYTHONPATH:
  reference_check.py read PNG BYTES        decode PNG with the library's dwtDct decoder, print the payload bytes
  reference_check.py mark IN OUT TEXT      mark IN with the library's dwtDct encoder, write OUT (PNG)
  reference_check.py fixture OUT           write the smooth test image the Diffusion tests decode, marked by the library
  reference_check.py yuv PNG               print how many pixels' U differ between OpenCV and the tests' integer formula
"""
import sys

import types

import cv2
import numpy as np

# The library imports its rivaGan method (torch, onnxruntime) at package load; dwtDct needs neither, so empty
# stand-ins let it load where they are not installed.
for name in ('torch', 'onnxruntime'):
    try:
        __import__(name)
    except ImportError:
        sys.modules[name] = types.ModuleType(name)

from imwatermark import WatermarkDecoder, WatermarkEncoder


def read(path, length):
    decoder = WatermarkDecoder('bytes', int(length) * 8)
    print(decoder.decode(cv2.imread(path), 'dwtDct'))


def mark(source, target, text):
    encoder = WatermarkEncoder()
    encoder.set_watermark('bytes', text.encode('utf-8'))
    cv2.imwrite(target, encoder.encode(cv2.imread(source), 'dwtDct'))


def fixture(target):
    # A smooth image (gradients and slow waves) with mild seeded noise: small as a PNG, textured enough to mark.
    height, width = 256, 320
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(16)
    r = 128 + 60 * np.sin(x / 37.0) + 30 * np.cos(y / 23.0)
    g = 90 + 0.4 * x + 20 * np.sin((x + y) / 29.0)
    b = 200 - 0.5 * y + 25 * np.cos(x / 19.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 3, (height, width, 3))
    bgr = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)[:, :, ::-1].copy()
    encoder = WatermarkEncoder()
    encoder.set_watermark('bytes', b'StableDiffusionV1')
    cv2.imwrite(target, encoder.encode(bgr, 'dwtDct'))


def yuv(path):
    bgr = cv2.imread(path)
    u_cv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[:, :, 1].astype(np.int64)
    b, g, r = (bgr[:, :, i].astype(np.int64) for i in range(3))
    y = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14
    u = np.clip(((b - y) * 8061 + (128 << 14) + (1 << 13)) >> 14, 0, 255)
    print(int((u != u_cv).sum()), 'of', u.size, 'pixels differ')


if __name__ == '__main__':
    {'read': read, 'mark': mark, 'fixture': fixture, 'yuv': yuv}[sys.argv[1]](*sys.argv[2:])
