//! Scheduled SLO reports: when a week, month or quarter ends, the report of
//! that period (`[[alerting.reports]]`) goes to its email receivers, with a
//! chart of each SLO's error budget over the period. The mail is rendered
//! once and written to the outbox like any notification (retries, delivery
//! state); that the period's report was queued is recorded in the alert
//! database, so a restart sends it neither twice nor never.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use super::Alerting;
use crate::chart::ChartRequest;
use crate::config::ReportSchedule;
use crate::notification::{Notification, ReportMail, new_id};
use crate::report::{ReportQuery, period, report};

/// At most this many charts in one report mail.
const MAX_CHARTS: usize = 12;

impl Alerting {
    /// Queues the reports whose period has ended and that were not queued
    /// yet (each of its tenant's SLOs; a tenant without SLOs yet is
    /// reported once it has some).
    pub async fn mail_due_reports(&self) {
        let rt = self.runtime();
        let Some(engines) = self.charts.engines() else {
            return;
        };
        let now = self.clock.now_ns();
        for schedule in &rt.config.reports {
            let Ok(tz) = schedule.time_zone.parse::<chrono_tz::Tz>() else {
                continue;
            };
            let (current, _) = period(schedule.period, now, tz);
            let (start, end) = period(schedule.period, current - 1, tz);
            match self.store.report_sent(&schedule.name, start) {
                Ok(false) => {}
                Ok(true) => continue,
                Err(e) => {
                    tracing::warn!(report = %schedule.name, error = %e, "Reading the report log failed; trying again later.");
                    continue;
                }
            }
            let tenant = &schedule.tenant;
            let Some(engine) = engines.get(tenant) else {
                continue;
            };
            let query = ReportQuery {
                period: schedule.period,
                at: Some(((start + end) / 2 / 1_000_000_000).to_string()),
                time_zone: Some(schedule.time_zone.clone()),
                by: schedule.by,
                service: schedule.service.clone(),
                team: schedule.team.clone(),
                format: None,
            };
            let mut answer = match report(&engine, self, tenant, &query).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(report = %schedule.name, error = %e.message(), "Making a scheduled report failed; trying again later.");
                    continue;
                }
            };
            answer["external_url"] = Value::String(rt.options.external_url.clone());
            let mail = match self.report_mail(schedule, &answer, (start, end)).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(report = %schedule.name, error = %e, "Rendering a scheduled report failed; trying again later.");
                    continue;
                }
            };
            let external_url = rt.options.external_url.clone();
            let items = schedule
                .receivers
                .iter()
                .map(|receiver| {
                    let id = new_id(now);
                    let n = Notification {
                        id: id.clone(),
                        receiver: receiver.clone(),
                        group_key: format!("report:{}", schedule.name),
                        group_labels: BTreeMap::from([(
                            "report".to_string(),
                            schedule.name.clone(),
                        )]),
                        status: "report".to_string(),
                        alerts: Vec::new(),
                        created_at: now,
                        thread: id,
                        external_url: external_url.clone(),
                        resend_interval_ns: 0,
                        scaling: None,
                        report: Some(mail.clone()),
                        tenant: tenant.clone(),
                    };
                    (n, None)
                })
                .collect();
            self.enqueue(items);
            if let Err(e) = self.store.mark_report_sent(&schedule.name, start, now) {
                tracing::warn!(report = %schedule.name, error = %e, "Recording a queued report failed; it may be sent again.");
            }
            tracing::info!(report = %schedule.name, period_start = %crate::render::rfc3339(start), "Scheduled SLO report queued.");
        }
    }

    /// The mail of a report: subject, text, HTML and each SLO's budget chart
    /// over the period.
    async fn report_mail(
        &self,
        schedule: &ReportSchedule,
        answer: &Value,
        (start, end): (i64, i64),
    ) -> Result<ReportMail, String> {
        let mut charts = Vec::new();
        let mut cids = BTreeMap::new();
        for line in answer["slos"]
            .as_array()
            .into_iter()
            .flatten()
            .take(MAX_CHARTS)
        {
            let Some(slo) = line["slo"].as_str() else {
                continue;
            };
            let req = ChartRequest {
                tenant: None,
                group: None,
                long: None,
                short: None,
                factor: None,
                from: (start / 1_000_000_000).to_string(),
                to: (end / 1_000_000_000).to_string(),
                at: None,
                level: None,
                expires: None,
            };
            match self.charts.png(&schedule.tenant, slo, &req).await {
                Ok(png) => {
                    let cid = format!("report-{}-{}@smolder", charts.len(), slo.len());
                    cids.insert(slo.to_string(), cid.clone());
                    charts.push((cid, base64::engine::general_purpose::STANDARD.encode(png)));
                }
                Err(e) => {
                    tracing::info!(slo, error = %e.message(), "A report goes without an SLO's chart.")
                }
            }
        }
        let (subject, text, html) = crate::render::report(&schedule.name, answer, &cids)?;
        Ok(ReportMail {
            subject,
            text,
            html,
            charts,
        })
    }
}
