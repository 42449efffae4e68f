DROP TABLE root_ocsp_responses;
