-- Valid SQL; the pipeline entry names a data_provider_profile (staging) missing from io_config.yaml.
SELECT SUM(value) AS total_value
FROM {{ df_1 }}
