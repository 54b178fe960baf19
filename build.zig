// zig build          → zig-out/lib/libringline.so (add -Doptimize=ReleaseFast to ship);
//                      needs only csrc/, so it also works inside the installed package
// zig build test     → C contract tests in tests/c/ (Debug: UBSan traps), and
//                      zig-out/bin/ringline-no-uring (runs a command with io_uring refused)
// Zig 0.11 build API.
const std = @import("std");

const core_sources = [_][]const u8{
    "csrc/bufring.c",
    "csrc/doorbell.c",
    "csrc/layout.c",
    "csrc/probe.c",
    "csrc/ring.c",
    "csrc/socket.c",
    "csrc/submit.c",
};

const c_flags = [_][]const u8{ "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror" };

fn linkUring(step: *std.Build.Step.Compile) void {
    step.addIncludePath(.{ .path = "csrc" });
    step.linkLibC();
    step.linkSystemLibrary2("uring", .{ .preferred_link_mode = .Static, .use_pkg_config = .no });
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const lib = b.addSharedLibrary(.{ .name = "ringline", .target = target, .optimize = optimize });
    lib.addCSourceFiles(&core_sources, &c_flags);
    linkUring(lib);
    lib.version_script = "csrc/ringline.map";
    b.installArtifact(lib);

    // The contract tests link the core sources directly, always in Debug so UBSan traps.
    const tests = b.addExecutable(.{ .name = "ringline-contract", .target = target, .optimize = .Debug });
    tests.addCSourceFiles(&core_sources, &c_flags);
    tests.addCSourceFiles(&.{"tests/c/contract.c"}, &c_flags);
    linkUring(tests);
    const run_tests = b.addRunArtifact(tests);
    const test_step = b.step("test", "Run the C contract tests");
    test_step.dependOn(&run_tests.step);

    // A command wrapper whose seccomp filter refuses io_uring (EPERM), for the fallback tests.
    const no_uring = b.addExecutable(.{ .name = "ringline-no-uring", .target = target, .optimize = optimize });
    no_uring.addCSourceFiles(&.{"tests/c/no_uring.c"}, &c_flags);
    no_uring.linkLibC();
    test_step.dependOn(&b.addInstallArtifact(no_uring, .{}).step);

    // zig build bench: the load generator, the two C echo servers, the eventfd wake probe and the epoll_ctl timer of bench/.
    const bench_step = b.step("bench", "Build the benchmark load generator and C echo servers");
    const bench_tools = [_][]const u8{ "loadgen", "echo_uring", "echo_epoll", "wake_probe", "watch_cost" };
    inline for (bench_tools) |name| {
        const exe = b.addExecutable(.{ .name = name, .target = target, .optimize = .ReleaseFast });
        exe.addCSourceFiles(&.{"bench/" ++ name ++ ".c"}, &c_flags);
        exe.addIncludePath(.{ .path = "bench" });
        linkUring(exe);
        bench_step.dependOn(&b.addInstallArtifact(exe, .{}).step);
    }
}
