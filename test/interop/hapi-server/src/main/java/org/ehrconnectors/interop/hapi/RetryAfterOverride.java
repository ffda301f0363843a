package org.ehrconnectors.interop.hapi;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import java.io.IOException;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Replaces the Retry-After HAPI sends (a fixed 120 s on $export status answers) when a test asks for a shorter
 * one (interop.bulk-retry-after-seconds); otherwise the answer is HAPI's own. Only the timing hint changes.
 */
@Component
public class RetryAfterOverride extends OncePerRequestFilter {
  private final InteropSettings settings;

  public RetryAfterOverride(InteropSettings settings) {
    this.settings = settings;
  }

  @Override
  protected boolean shouldNotFilter(HttpServletRequest request) {
    return settings.bulkRetryAfterSeconds < 0;
  }

  @Override
  protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    String seconds = String.valueOf(settings.bulkRetryAfterSeconds);
    chain.doFilter(
        request,
        new HttpServletResponseWrapper(response) {
          @Override
          public void setHeader(String name, String value) {
            super.setHeader(name, "Retry-After".equalsIgnoreCase(name) ? seconds : value);
          }

          @Override
          public void addHeader(String name, String value) {
            super.addHeader(name, "Retry-After".equalsIgnoreCase(name) ? seconds : value);
          }
        });
  }
}
