package org.ehrconnectors.interop.hapi;

import java.util.Optional;

/**
 * Ends this JVM when the process that started it is gone, so a test runner killed outright (no
 * chance to stop its children) never leaves a server behind. Started from main, before the slow
 * part of start-up; off unless a parent pid is given.
 */
final class ParentWatch {
  private ParentWatch() {}

  /** The pid from {@code --interop.parent-pid=N} or {@code -Dinterop.parent-pid=N}; 0 when unset. */
  static long parentPid(String[] args) {
    String value = System.getProperty("interop.parent-pid", "0");
    for (String arg : args) {
      if (arg.startsWith("--interop.parent-pid=")) value = arg.substring("--interop.parent-pid=".length());
    }
    return Long.parseLong(value.trim());
  }

  static void start(long parentPid) {
    if (parentPid <= 0) return;
    Optional<ProcessHandle> parent = ProcessHandle.of(parentPid);
    if (parent.isEmpty() || !parent.get().isAlive()) {
      System.err.println("interop: parent " + parentPid + " is already gone; exiting");
      Runtime.getRuntime().halt(3);
    }
    Thread watcher =
        new Thread(
            () -> {
              while (parent.get().isAlive()) {
                try {
                  Thread.sleep(1000);
                } catch (InterruptedException e) {
                  return;
                }
              }
              System.err.println("interop: parent " + parentPid + " is gone; exiting");
              // halt, not exit: shutdown hooks could wait on work nobody will ever ask for again.
              Runtime.getRuntime().halt(3);
            },
            "interop-parent-watch");
    watcher.setDaemon(true);
    watcher.start();
  }
}
