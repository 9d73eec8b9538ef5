# The slimkit training addon over LibTorch. Build with `npm run build:native` (scripts/build-native.sh),
# which finds LibTorch once (scripts/find-libtorch.mjs) and passes it in $SLIM_LIBTORCH_JSON; every
# `<!(...)` below reads that, or runs the discovery itself when node-gyp is called directly.
{
  "targets": [
    {
      "target_name": "slimkit_torch",
      "sources": [
        "src/addon.cc",
        "src/alloc.cc",
        "src/data.cc",
        "src/dist_addon.cc",
        "src/dist_bn.cc",
        "src/dist_group.cc",
        "src/dist_reducer.cc",
        "src/distill.cc",
        "src/executor.cc",
        "src/kernels.cc",
        "src/optim.cc",
        "src/plan.cc",
        "src/qat.cc",
        "src/step_graph.cc",
        "src/train.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node ../scripts/find-libtorch.mjs --gyp includeDirs)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "<!@(node ../scripts/find-libtorch.mjs --gyp defines)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": [
        "-std=<!(node ../scripts/find-libtorch.mjs --gyp cxxStd)",
        "-fexceptions",
        "-frtti",
        "-O2",
        "-Wno-unused-parameter",
        "-Wno-deprecated-declarations",
        "-Wno-overloaded-virtual"
      ],
      "libraries": [
        "-L<!(node ../scripts/find-libtorch.mjs --gyp libDir)",
        "-Wl,-rpath,<!(node ../scripts/find-libtorch.mjs --gyp libDir)",
        "<!@(node ../scripts/find-libtorch.mjs --gyp libs)"
      ]
    }
  ]
}
