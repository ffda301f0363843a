package org.ehrconnectors.interop.hapi;

import java.util.Map;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.embedded.EmbeddedWebServerFactoryCustomizerAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * A FHIR R4 server the project did not write, for the interop tests: HAPI FHIR JPA over H2, at
 * http://127.0.0.1:PORT/fhir. Only the embedded web server is auto-configured; every HAPI part is
 * wired by hand in {@link HapiJpaWiring} so start-up stays short and nothing unasked-for runs.
 *
 * <p>Settings are system properties or {@code --name=value} arguments (see {@link InteropSettings}).
 */
@SpringBootConfiguration
@ImportAutoConfiguration({
  PropertyPlaceholderAutoConfiguration.class,
  ServletWebServerFactoryAutoConfiguration.class,
  EmbeddedWebServerFactoryCustomizerAutoConfiguration.class
})
@Import({HapiJpaWiring.class, FhirEndpoint.class, RetryAfterOverride.class})
public class InteropHapiServer {

  public static void main(String[] args) {
    ParentWatch.start(ParentWatch.parentPid(args));
    SpringApplication app = new SpringApplication(InteropHapiServer.class);
    app.setDefaultProperties(
        Map.of(
            "server.address", "127.0.0.1",
            "server.port", "8080",
            "server.tomcat.relaxed-query-chars", "|",
            "spring.main.banner-mode", "off",
            "spring.main.allow-circular-references", "true",
            "spring.main.lazy-initialization", "false"));
    app.run(args);
  }
}
