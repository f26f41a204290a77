#!/usr/bin/env python3
# Minimal DRM client for transport tests (Node cannot ioctl). Usage: drm_client.py NODE [hold [reopen]]
# Issues DRM_IOCTL_VERSION and VIRTGPU_GETPARAM (from a second thread), prints one JSON line; with "hold" waits
# for a line on stdin, then tries one more GETPARAM and prints its outcome ({"after": errno|"ok"}), with "reopen"
# then a second open of NODE while the first file is still open ({"reopen": errno|"ok"}), then the outcome of close().
import ctypes, fcntl, json, os, struct, sys, threading

DRM_IOCTL_VERSION = 0xC0406400           # _IOWR('d', 0x00, struct drm_version) (64 bytes)
DRM_IOCTL_VIRTGPU_GETPARAM = 0xC0106443  # _IOWR('d', 0x43, struct drm_virtgpu_getparam) (16 bytes)

def getparam(fd, param):
    val = ctypes.c_int(-1)
    buf = bytearray(struct.pack('<QQ', param, ctypes.addressof(val)))
    rc = fcntl.ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, buf, True)
    return rc, val.value

fd = os.open(sys.argv[1], os.O_RDWR)
name, date, desc = (ctypes.create_string_buffer(64) for _ in range(3))
v = bytearray(struct.pack('<iii4xQQQQQQ', 0, 0, 0, 64, ctypes.addressof(name), 64, ctypes.addressof(date), 64, ctypes.addressof(desc)))
rc = fcntl.ioctl(fd, DRM_IOCTL_VERSION, v, True)
major, minor, patch, _pad, name_len = struct.unpack('<iiiIQ', v[:24])
out = {'pid': os.getpid(), 'version_rc': rc, 'version': [major, minor, patch], 'name': name.value.decode(), 'name_len': name_len,
       'desc': desc.value.decode()}
res = {}
def worker():
    res['features3d'] = getparam(fd, 1)  # VIRTGPU_PARAM_3D_FEATURES, from a thread: tid != pid
    res['capsets'] = getparam(fd, 7)     # VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs
th = threading.Thread(target=worker); th.start(); th.join()
out.update({k: list(v) for k, v in res.items()})
print(json.dumps(out), flush=True)
if len(sys.argv) > 2 and sys.argv[2] == 'hold':
    sys.stdin.readline()
    try:
        getparam(fd, 1)
        print(json.dumps({'after': 'ok'}), flush=True)
    except OSError as e:
        print(json.dumps({'after': e.errno}), flush=True)
    if len(sys.argv) > 3 and sys.argv[3] == 'reopen':
        try:
            os.close(os.open(sys.argv[1], os.O_RDWR))
            print(json.dumps({'reopen': 'ok'}), flush=True)
        except OSError as e:
            print(json.dumps({'reopen': e.errno}), flush=True)
try:
    os.close(fd)
    closed = 'ok'
except OSError as e:
    closed = e.errno  # FLUSH on an aborted connection fails with ENOTCONN; the fd is closed anyway
if len(sys.argv) > 2 and sys.argv[2] == 'hold':
    print(json.dumps({'close': closed}), flush=True)
