# SO_PEERCRED addon (Linux): the kernel's pid/uid/gid of a Unix socket peer. Built by scripts/build-native.mjs.
{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17"]
    }
  ]
}
