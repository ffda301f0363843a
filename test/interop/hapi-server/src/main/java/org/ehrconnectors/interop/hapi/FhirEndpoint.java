package org.ehrconnectors.interop.hapi;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.interceptor.api.IInterceptorService;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.partition.PartitionManagementProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.partition.RequestTenantPartitionInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.tenant.UrlBaseTenantIdentificationStrategy;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The FHIR REST endpoint at /fhir: resource providers, system operations, paging, $export; with partitioning,
 * the partition is the URL's first segment (/fhir/&lt;partition&gt;/...) and partitions are managed over REST.
 */
@Configuration
public class FhirEndpoint {

  @Bean
  public RestfulServer restfulServer(
      IFhirSystemDao<?, ?> systemDao,
      ResourceProviderFactory resourceProviders,
      JpaSystemProvider<?, ?> systemProvider,
      JpaStorageSettings storageSettings,
      ISearchParamRegistry searchParamRegistry,
      IValidationSupport validationSupport,
      DatabaseBackedPagingProvider pagingProvider,
      BulkDataExportProvider bulkDataExportProvider,
      PartitionManagementProvider partitionManagementProvider,
      RequestTenantPartitionInterceptor tenantPartitionInterceptor,
      IInterceptorService interceptors,
      InteropSettings settings) {
    RestfulServer server = new RestfulServer(systemDao.getContext());
    server.registerProviders(resourceProviders.createProviders());
    server.registerProvider(systemProvider);
    if (settings.bulkExport) server.registerProvider(bulkDataExportProvider);
    if (settings.partitioning) {
      server.setTenantIdentificationStrategy(new UrlBaseTenantIdentificationStrategy());
      // On HAPI's own interceptor service, not the endpoint's: bulk export's batch jobs ask it for their partition
      // outside any REST request (registered on the endpoint only, their steps fail with HAPI-1319).
      interceptors.registerInterceptor(tenantPartitionInterceptor);
      server.registerProvider(partitionManagementProvider);
    }
    pagingProvider.setDefaultPageSize(settings.defaultPageSize);
    pagingProvider.setMaximumPageSize(settings.maxPageSize);
    server.setPagingProvider(pagingProvider);
    server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
    server.setServerConformanceProvider(
        new JpaCapabilityStatementProvider(
            server, systemDao, storageSettings, searchParamRegistry, validationSupport));
    return server;
  }

  @Bean
  public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer server) {
    ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(server, "/fhir/*");
    registration.setLoadOnStartup(1);
    return registration;
  }
}
