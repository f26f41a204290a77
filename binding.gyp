{
  "targets": [
    {
      "target_name": "virtgpu_uffd",
      "sources": ["uffd/native/syscalls.cc", "uffd/native/reader.cc", "uffd/native/pidwatch.cc", "uffd/native/channel.cc", "uffd/native/shared-mem.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-fexceptions"]
    },
    {
      "target_name": "virtgpu_testkit",
      "sources": ["uffd/native/testkit.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-fexceptions"]
    },
    {
      "target_name": "virtgpu-emu-preload",
      "type": "shared_library",
      "product_prefix": "",
      "product_extension": "so",
      "sources": ["<!@(ls uffd/preload/*.c)"],
      "cflags": ["-Wall", "-Wextra", "-fPIC", "-fvisibility=hidden", "-fno-delete-null-pointer-checks"],
      "ldflags": ["-Wl,--no-undefined"],
      "libraries": []
    },
    {
      "target_name": "virtgpu-emu-launch",
      "type": "executable",
      "sources": ["uffd/native/launch.c"],
      "cflags": ["-Wall", "-Wextra"],
      "ldflags": ["-static"]
    }
  ]
}
