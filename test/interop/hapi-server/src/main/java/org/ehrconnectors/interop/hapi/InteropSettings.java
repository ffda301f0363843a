package org.ehrconnectors.interop.hapi;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * What a test may change between two instances. Each is a Spring property, so either
 * {@code -Dinterop.x=..} or {@code --interop.x=..} sets it. Defaults are HAPI's own unless noted.
 */
@Component
public class InteropSettings {
  /** HAPI reuses an identical search's cached results for this long (HAPI default 60 000 ms). */
  @Value("${interop.reuse-cached-search-results-millis:60000}")
  public long reuseCachedSearchResultsMillis;

  /** Page size when the client sends no _count (HAPI default 20). */
  @Value("${interop.default-page-size:20}")
  public int defaultPageSize;

  /** Largest page HAPI serves, whatever _count asks (HAPI default 200). */
  @Value("${interop.max-page-size:200}")
  public int maxPageSize;

  /**
   * No search yields more than this many matches (the last of HAPI's search pre-fetch thresholds);
   * 0 means no cap, HAPI's default.
   */
  @Value("${interop.result-cap:0}")
  public int resultCap;

  /** H2 JDBC URL; an in-memory database unless a test asks for a file. */
  @Value("${interop.jdbc-url:jdbc:h2:mem:interop;DB_CLOSE_DELAY=-1}")
  public String jdbcUrl;

  /** Registers $export (system, Patient, Group) and its status/poll endpoints. */
  @Value("${interop.bulk-export:true}")
  public boolean bulkExport;

  /**
   * HAPI hands back an earlier identical export job instead of running a new one when this is on
   * (its default); off here so an export after a change sees the change.
   */
  @Value("${interop.bulk-export-reuse:false}")
  public boolean bulkExportReuse;

  /** How often batch2 job maintenance runs (HAPI default 60 000 ms); exports finish a step per pass. */
  @Value("${interop.batch-maintenance-millis:1000}")
  public long batchMaintenanceMillis;

  /**
   * HAPI partitioning with URL-based tenants: every request names its partition as the first path segment
   * ({@code /fhir/<partition>/Patient}), and partitions are created at {@code /fhir/DEFAULT/$partition-management-
   * create-partition}. One server then holds the data of several test files, each in its own partition.
   */
  @Value("${interop.partitioning:false}")
  public boolean partitioning;

  /** Retry-After on $export status answers, in seconds; negative: HAPI's own (a fixed 120). */
  @Value("${interop.bulk-retry-after-seconds:-1}")
  public int bulkRetryAfterSeconds;
}
