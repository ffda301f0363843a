package org.ehrconnectors.interop.hapi;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import com.zaxxer.hikari.HikariDataSource;
import jakarta.persistence.EntityManagerFactory;
import java.util.List;
import java.util.Properties;
import javax.sql.DataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/** HAPI's own JPA, R4 and batch2 (bulk export) configurations, over one H2 database. */
@Configuration
@Import({
  InteropSettings.class,
  JpaR4Config.class,
  HapiJpaConfig.class,
  JpaBatch2Config.class,
  Batch2JobsConfig.class,
  ThreadPoolFactoryConfig.class,
  // In-memory message channels: batch2 sends its work chunks over them.
  SubscriptionChannelConfig.class
})
public class HapiJpaWiring {

  @Bean(destroyMethod = "close")
  public DataSource dataSource(InteropSettings settings) {
    HikariDataSource ds = new HikariDataSource();
    ds.setJdbcUrl(settings.jdbcUrl);
    ds.setUsername("sa");
    ds.setPassword("");
    ds.setMaximumPoolSize(10);
    return ds;
  }

  @Bean
  public JpaStorageSettings storageSettings(InteropSettings settings) {
    JpaStorageSettings s = new JpaStorageSettings();
    // Soft delete only: a deleted resource stays in _history as a delete entry.
    s.setDeleteEnabled(true);
    s.setExpungeEnabled(false);
    s.setDeleteExpungeEnabled(false);
    s.setAllowMultipleDelete(true);
    s.setReuseCachedSearchResultsForMillis(settings.reuseCachedSearchResultsMillis);
    if (settings.resultCap > 0) {
      // HAPI loads a search's matches in rounds (13, 503, 2003, 6003, then all: the -1); ending the
      // list with a positive number stops there, so no search ever yields more than that many.
      s.setSearchPreFetchThresholds(
          settings.resultCap > 13 ? List.of(13, settings.resultCap) : List.of(settings.resultCap));
    }
    s.setEnableBulkExportJobReuse(settings.bulkExportReuse);
    return s;
  }

  @Bean
  public PartitionSettings partitionSettings(InteropSettings settings) {
    PartitionSettings partitions = new PartitionSettings();
    partitions.setPartitioningEnabled(settings.partitioning);
    return partitions;
  }

  @Bean
  public SubscriptionSettings subscriptionSettings() {
    return new SubscriptionSettings();
  }

  @Bean
  @Primary
  public LocalContainerEntityManagerFactoryBean entityManagerFactory(
      ConfigurableListableBeanFactory beanFactory,
      FhirContext fhirContext,
      JpaStorageSettings storageSettings,
      DataSource dataSource) {
    LocalContainerEntityManagerFactoryBean emf =
        HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
    emf.setPersistenceUnitName("HAPI_INTEROP_PU");
    emf.setDataSource(dataSource);
    Properties jpa = new Properties();
    jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
    jpa.put("hibernate.hbm2ddl.auto", "update");
    jpa.put("hibernate.format_sql", "false");
    jpa.put("hibernate.show_sql", "false");
    jpa.put("hibernate.jdbc.batch_size", "20");
    jpa.put("hibernate.cache.use_query_cache", "false");
    jpa.put("hibernate.cache.use_second_level_cache", "false");
    jpa.put("hibernate.search.enabled", "false");
    emf.setJpaProperties(jpa);
    return emf;
  }

  @Bean
  @Primary
  public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
    JpaTransactionManager tm = new JpaTransactionManager();
    tm.setEntityManagerFactory(entityManagerFactory);
    return tm;
  }

  /** A bulk export advances one step per maintenance pass; HAPI's minute makes tests wait. */
  @Bean
  public Object batchMaintenanceFrequency(IJobMaintenanceService maintenance, InteropSettings settings) {
    ((JobMaintenanceServiceImpl) maintenance).setScheduledJobFrequencyMillis(settings.batchMaintenanceMillis);
    return new Object();
  }
}
