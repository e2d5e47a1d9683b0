pub 
mod eraftpb;
